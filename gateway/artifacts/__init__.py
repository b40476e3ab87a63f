"""The artifact proxy: uploads, downloads, listings, multipart uploads, folder archives, run artifacts."""
