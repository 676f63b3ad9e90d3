"""Real libraries run through protoport against real servers."""
