// Qwen-VL image processor.
