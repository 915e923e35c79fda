"""`python -m gateway_trio.testing --help`: the mock upstream as its own process (the benchmark's)."""

from gateway_trio.testing.mock_upstream import main

main()
