"""Load collections of an OGC API – Features service in QGIS (offscreen) and count their features.

Run by tests/ogc/test_qgis.py with Debian's python3 (python3-qgis), not the project's venv:

    python3 qgis_load.py URL KEY AUTH_DIR collection ...

It stores a Basic authentication configuration (any user, the key as the password) in a QGIS
authentication database under AUTH_DIR, opens every collection through the OAPIF provider with
it, and prints {"collection": {"valid": …, "features": n, "geometry": "…"}} as JSON.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys


def main(url: str, key: str, auth_dir: str, collections: list[str]) -> None:
    """Open each collection in QGIS, count what it reads and print it."""
    faulthandler.enable()  # a crash inside QGIS prints where it happened
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["QGIS_AUTH_DB_DIR_PATH"] = auth_dir
    from qgis.core import QgsApplication, QgsAuthMethodConfig, QgsVectorLayer, QgsWkbTypes

    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    manager = QgsApplication.authManager()
    manager.setMasterPassword("ogc-test-master", True)
    config = QgsAuthMethodConfig("Basic")
    config.setName("EST Lägesbild")
    config.setConfig("username", "qgis")
    config.setConfig("password", key)
    assert manager.storeAuthenticationConfig(config)[0], "the auth configuration was not stored"
    found: dict[str, object] = {}
    for collection in collections:
        print(f"reading {collection}", file=sys.stderr, flush=True)
        uri = f"url='{url}' typename='{collection}' authcfg='{config.id()}'"
        layer = QgsVectorLayer(uri, collection, "OAPIF")
        features = sum(1 for _ in layer.getFeatures()) if layer.isValid() else 0
        found[collection] = {
            "valid": layer.isValid(),
            "features": features,
            "geometry": QgsWkbTypes.displayString(layer.wkbType()),
        }
    print(json.dumps(found), flush=True)
    # QGIS 3.22 crashes (a segfault) when its layers and application are torn down after use;
    # everything is said by now, so the process ends without that teardown
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
