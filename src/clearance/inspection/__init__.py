"""Independent inspection of releases: detection content, binaries and source."""
