pytest_plugins = ["cadence.testing.fixtures"]
