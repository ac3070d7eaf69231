"""`kpi explain`: what drove a KPI's change between two periods.

`decompose` holds the pure decompositions, `marts` reads the published marts and picks the
decomposition a KPI allows, `render` prints the result.
"""
