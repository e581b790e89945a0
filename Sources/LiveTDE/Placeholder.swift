// Placeholder: replaced as the LiveTDE target is built.
