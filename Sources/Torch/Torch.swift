// Torch module.
