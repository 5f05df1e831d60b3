"""The benchmark of record (`make bench`): the real GraphQL server against a hand-written reference."""
