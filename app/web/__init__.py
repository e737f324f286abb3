"""HTTP edge: thin blueprints, marshmallow schemas and the one error table."""
