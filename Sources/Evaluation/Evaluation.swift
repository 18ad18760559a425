/// Evaluation protocols of the seed systems (`vlmrl eval`): REC, counting, GeoQA, A-OKVQA and
/// grounding, batched greedy decoding through the rollout engine, and the report files.
public enum Evaluation {}
