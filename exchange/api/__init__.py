"""The HTTP personality of the exchange: thin routes over the services."""
