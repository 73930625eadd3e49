"""Built-in plugins: core features that are not the contact record itself, on the same hook manager."""
