"""FIX 4.4 gateway: wire codec, durable session layer, acceptor and the order-entry application."""
