"""wtc's tests: a package, so every module imports the shared helpers one way
(`from tests.helpers import ...`) from any folder."""
