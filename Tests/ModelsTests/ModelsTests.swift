// ModelsTests: parity of the Qwen-VL models with transformers (fixtures from tools/golden/qwen_vl_golden.py).
