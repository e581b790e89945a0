// Placeholder: replaced as the RingBuffer target is built.
