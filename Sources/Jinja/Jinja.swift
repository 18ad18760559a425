// Jinja module.
