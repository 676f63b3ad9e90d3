"""The built-in scenarios, one module per area; every module here is imported by
:func:`protoport.compat.load_scenarios`, and its name starts the ids of its
scenarios."""
