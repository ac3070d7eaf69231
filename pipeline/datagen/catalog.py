"""The product catalogue: fixed (does not scale), 60 products over six categories."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .rng import rng

# category: (item names, price range, margin range, popularity)
_CATEGORIES: tuple[tuple[str, tuple[str, ...], tuple[float, float], float], ...] = (
    ("furniture", ("Oak Side Table", "Rattan Armchair", "Walnut Bookshelf", "Linen Sofa",
                   "Nesting Coffee Tables", "Velvet Ottoman", "Teak Console",
                   "Bamboo Bar Stool", "Storage Bench", "Writing Desk"), (120.0, 420.0), 0.6),
    ("lighting", ("Brass Floor Lamp", "Ceramic Table Lamp", "Rattan Pendant", "Globe Sconce",
                  "Arc Lamp", "Paper Lantern", "LED Candle Set", "Mushroom Lamp",
                  "Picture Light", "String Lights"), (22.0, 165.0), 1.0),
    ("textiles", ("Linen Throw", "Wool Rug", "Velvet Cushion", "Cotton Curtains",
                  "Jute Runner", "Knit Blanket", "Bed Linen Set", "Bath Towel Set",
                  "Table Cloth", "Boucle Cushion"), (15.0, 120.0), 1.6),
    ("wall_decor", ("Framed Print", "Round Mirror", "Macrame Hanging", "Wall Clock",
                    "Floating Shelf", "Canvas Art", "Photo Frame Set", "Woven Basket Wall",
                    "Metal Wall Art", "Arched Mirror"), (18.0, 140.0), 1.2),
    ("kitchen", ("Stoneware Mugs", "Ceramic Vase", "Serving Board", "Glass Carafe",
                 "Linen Napkins", "Salad Bowl", "Spice Rack", "Cutlery Set",
                 "Marble Tray", "Tea Set"), (10.0, 65.0), 1.5),
    ("outdoor", ("Teak Lounge Chair", "Planter Set", "Outdoor Rug", "Solar Lanterns",
                 "Bistro Set", "Hammock", "Fire Pit", "Garden Bench", "Bird Feeder",
                 "Parasol"), (20.0, 280.0), 0.7),
)
PRICE_INCREASE_ON = np.datetime64("2026-03-01", "D")
PRICE_INCREASE = 1.06  # furniture and lighting became 6% dearer on 2026-03-01
_INCREASED = ("furniture", "lighting")
_LAUNCH_DATES = np.array(
    ["2025-02-03", "2025-04-14", "2025-06-02", "2025-09-01", "2025-10-13", "2026-01-12",
     "2026-03-02", "2026-04-20", "2026-06-08", "2026-09-07"], dtype="datetime64[D]")


def products(seed: int) -> pd.DataFrame:
    """The catalogue; ten products are launched during the history, the rest before it."""
    gen = rng(seed, "products", -1)
    rows = []
    for category, names, (low, high), _ in _CATEGORIES:
        # Log-uniform prices, ending in .99 or .00, margins between 45% and 65%.
        prices = np.exp(gen.uniform(np.log(low), np.log(high), len(names)))
        prices = np.floor(prices) + np.where(gen.random(len(names)) < 0.7, 0.99, 0.0)
        costs = np.round(prices * gen.uniform(0.35, 0.55, len(names)), 2)
        for name, price, cost in zip(names, prices, costs, strict=True):
            rows.append((name, category, float(price), float(cost)))
    n = len(rows)
    launched = np.datetime64("2021-03-01", "D") + gen.integers(0, 1300, n)
    newcomers = np.sort(gen.choice(n, size=len(_LAUNCH_DATES), replace=False))
    launched[newcomers] = _LAUNCH_DATES
    return pd.DataFrame({
        "product_id": np.arange(1, n + 1, dtype=np.int64),
        "product_name": pd.array([r[0] for r in rows], dtype="str"),
        "category": pd.array([r[1] for r in rows], dtype="str"),
        "price": np.array([r[2] for r in rows]),
        "unit_cost": np.array([r[3] for r in rows]),
        "launched_on": launched.astype("datetime64[s]"),
    })


def popularity(catalogue: pd.DataFrame, seed: int) -> np.ndarray:
    """Relative sales weight per product: category popularity, cheaper sells more, a few hits."""
    gen = rng(seed, "popularity", -1)
    by_category = {c: w for c, _, _, w in _CATEGORIES}
    base = catalogue["category"].map(by_category).to_numpy(dtype=float)
    weight = base * np.power(catalogue["price"].to_numpy(), -0.6) * gen.lognormal(0, 0.5, len(base))
    return np.asarray(weight / weight.sum())


def price_at(catalogue: pd.DataFrame, product_idx: np.ndarray, days: np.ndarray) -> np.ndarray:
    """The unit price of products (row positions) on given days: before the 2026 increase,
    furniture and lighting cost 6% less."""
    price = catalogue["price"].to_numpy()[product_idx]
    raised = catalogue["category"].isin(_INCREASED).to_numpy()[product_idx]
    before = raised & (days < PRICE_INCREASE_ON)
    return np.where(before, np.round(price / PRICE_INCREASE, 0) - 0.01, price)
