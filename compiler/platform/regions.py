"""The regions and clouds Modal lets a function ask for (``region=``, ``cloud=``): platform facts with their
source, like the GPU catalog.

Source: Modal's guide "Region selection" (https://modal.com/docs/guide/region-selection), its "Region
options" tables, read 2026-11-30 through a mirror of the page in the code corpus (dorkitude/vd,
content/modal/docs/guide/region-selection.md). Broad regions (``us``, ``eu``, ``ap``) contain the narrower
ones, which contain the provider regions. Clouds: ``App.function``'s docstring in modal 1.6.4 ("Possible
values are aws, gcp, oci, auto"). Modal adds regions over time: a name missing here is an error mtc's lint
reports with the known names, fixed by adding it to this table.
"""

from __future__ import annotations

SOURCE = "https://modal.com/docs/guide/region-selection (read 2026-11-30)"

# broad region -> the provider regions it contains (as the guide lists them)
BROAD: dict[str, tuple[str, ...]] = {
    "us-east": ("us-east-1", "us-east-2", "us-east1", "us-east4", "us-east5", "us-ashburn-1"),
    "us-central": ("us-central1", "us-chicago-1", "us-phoenix-1"),
    "us-west": ("us-west-1", "us-west-2", "us-west1", "us-west3", "us-west4", "us-sanjose-1"),
    "eu-west": (
        "eu-central-1",
        "eu-west-1",
        "eu-west-3",
        "europe-west1",
        "europe-west3",
        "europe-west4",
        "eu-frankfurt-1",
        "eu-paris-1",
    ),
    "eu-north": ("eu-north-1",),
    "ap-northeast": ("asia-northeast3", "asia-northeast1", "ap-northeast-1", "ap-northeast-3"),
    "ap-southeast": ("asia-southeast1", "ap-southeast-3"),
    "ap-south": ("ap-south-1",),
    "ca": ("ca-central-1", "ca-toronto-1"),
    "uk": ("uk-london-1", "europe-west2", "eu-west-2"),
    "jp": ("ap-northeast-1", "ap-northeast-3", "asia-northeast1"),
    "me": ("me-west1",),
    "sa": ("sa-east-1",),
}
CONTINENTS = ("us", "eu", "ap")  # "us" is any region in the United States, and so on

CLOUDS = ("aws", "gcp", "oci", "auto")


def names() -> list[str]:
    """Every region name a function may ask for: continents, broad regions, then provider regions."""
    specific = [name for names in BROAD.values() for name in names]
    return list(dict.fromkeys([*CONTINENTS, *BROAD, *specific]))


def is_known(name: str) -> bool:
    return name in _KNOWN


_KNOWN = frozenset(names())
