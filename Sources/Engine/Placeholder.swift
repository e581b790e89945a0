// Placeholder: replaced as the Engine target is built.
