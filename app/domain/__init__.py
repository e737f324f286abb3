"""Pure rules of the bridge: no Flask, SQLAlchemy or requests; the clock comes in as an argument."""
