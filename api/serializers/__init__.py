"""Read serializers (what a record looks like) and write serializers (what a step takes)."""
