"""The exchange: submitting, receiving and answering messages between hosted township nodes."""
