"""What KPIs mean, read by validate and plan alike: periods of the calendar, how values
combine over periods (additivity), which KPIs read which (the graph), the marts' columns."""
