"""What every layer shares: domain errors, the vocabulary, the category taxonomy, Swedish names."""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[2] / "data"  # what ships: taxonomy, areas, mappings
MAPPINGS_DIR = DATA_DIR / "mappings"  # the shipped import presets, one YAML file each
AREAS_FILE = DATA_DIR / "kommuner" / "kommuner_sweref99tm.gpkg"  # SCB's kommuner and län


def preset_names() -> list[str]:
    """The names of the shipped import presets (data/mappings/*.yaml)."""
    return sorted(p.stem for p in MAPPINGS_DIR.glob("*.yaml"))
