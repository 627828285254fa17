"""Sub-commands of the lab's CLI, one module each."""
