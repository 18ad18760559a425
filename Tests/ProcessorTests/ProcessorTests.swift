// ProcessorTests: the Qwen image processor against transformers (fixtures from tools/golden).
