"""One module per message family; each registers its handlers with `@handles`."""
