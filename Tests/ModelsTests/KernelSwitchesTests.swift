import Testing
@testable import Models

/// The fast-path switches as the CLI reads them from the environment.
@Suite struct KernelSwitchesTests {
  /// `VLMRL_ATTENTION_MASS` picks where recorded layers compute their attention masses; unset (or,
  /// as for the other `VLMRL_*` switches, a value it does not know) keeps the default, the
  /// decode-attention kernel's fused variant (`vlmrl bench rollout` names the way it recorded).
  @Test func attentionMassPathFromEnvironment() {
    #expect(KernelSwitches.fromEnvironment([:]).attentionMass == .fused)
    #expect(KernelSwitches.fromEnvironment(["VLMRL_ATTENTION_MASS": "fused"]).attentionMass == .fused)
    #expect(KernelSwitches.fromEnvironment(["VLMRL_ATTENTION_MASS": "separate"]).attentionMass == .separate)
    #expect(KernelSwitches.fromEnvironment(["VLMRL_ATTENTION_MASS": "ops"]).attentionMass == .ops)
    #expect(KernelSwitches.fromEnvironment(["VLMRL_ATTENTION_MASS": "kernel"]).attentionMass == .fused)
    // Other switches are untouched by it.
    #expect(KernelSwitches.fromEnvironment(["VLMRL_ATTENTION_MASS": "ops"]).decodeAttentionKernel)
  }
}
