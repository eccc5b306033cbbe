"""Where a function runs: on this machine (local) or on Modal."""
