"""Where bytes live: each transport is a Source and/or a Destination (see ``base``)."""
