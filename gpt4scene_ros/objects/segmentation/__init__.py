"""Class-agnostic segmentation of the map's surface into objects (driver: :mod:`.surface`)."""
