// ModelConfig module.
