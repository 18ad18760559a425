import Jinja
import Testing
@testable import Prompting

@Suite struct ImagePadTests {
  // MARK: image pads

  @Test func expandsEachPadInOrder() throws {
    let text = "a<|image_pad|>b<|image_pad|>c"
    let expanded = try expandImagePads(text, imageTokenCounts: [2, 3])
    #expect(expanded == "a<|image_pad|><|image_pad|>b<|image_pad|><|image_pad|><|image_pad|>c")
    #expect(try expandImagePads("no images", imageTokenCounts: []) == "no images")
    #expect(try expandImagePads("<|video_pad|>", imageTokenCounts: [2], padToken: "<|video_pad|>") == "<|video_pad|><|video_pad|>")
  }

  @Test func padCountMismatchIsAnError() {
    #expect(throws: ImagePadError.self) { try expandImagePads("<|image_pad|>", imageTokenCounts: [1, 2]) }
    #expect(throws: ImagePadError.self) { try expandImagePads("<|image_pad|><|image_pad|>", imageTokenCounts: [4]) }
    #expect(throws: ImagePadError.self) { try expandImagePads("<|image_pad|>", imageTokenCounts: [0]) }
    do {
      _ = try expandImagePads("x<|image_pad|>", imageTokenCounts: [])
      Issue.record("expected an error")
    } catch {
      #expect(error.description.contains("1 '<|image_pad|>' token(s) but 0"))
    }
  }

  @Test func renderedPromptExpandsForAnImage() throws {
    // A 448x448 image: grid (1, 32, 32) -> 1*32*32/4 = 256 tokens (spec section 5).
    let prompt = try ChatTemplate.chatML.render(
      messages: [ChatMessage(role: "user", parts: [.image, .text("Hi")])], addGenerationPrompt: true)
    let expanded = try expandImagePads(prompt, imageTokenCounts: [256])
    #expect(expanded.components(separatedBy: "<|image_pad|>").count - 1 == 256)
    #expect(expanded.hasPrefix("<|im_start|>system\n"))
  }
}
