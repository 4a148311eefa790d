"""The test suite: unit tests of the libraries, integration tests on a real PostGIS."""
