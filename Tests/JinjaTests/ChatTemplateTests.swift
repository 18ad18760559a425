import Foundation
import Testing

@testable import Jinja

@Suite struct ChatTemplateTests {
  /// The exact string of docs/qwen-vl.md, section 6 (Qwen-VL Instruct, system + image + text, generation prompt).
  static let specExample =
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    + "<|vision_start|><|image_pad|><|vision_end|>Describe this image.<|im_end|>\n<|im_start|>assistant\n"

  @Test func typedMessagesRenderTheSpecExample() throws {
    let messages = [
      ChatMessage(role: "system", text: "You are a helpful assistant."),
      ChatMessage(role: "user", parts: [.image, .text("Describe this image.")]),
    ]
    #expect(try ChatTemplate.chatML.render(messages: messages, addGenerationPrompt: true) == Self.specExample)
    // Without the system message the default system prompt is injected: same string.
    let userOnly = [ChatMessage(role: "user", parts: [.image, .text("Describe this image.")])]
    #expect(try ChatTemplate.chatML.render(messages: userOnly, addGenerationPrompt: true) == Self.specExample)
  }

  @Test func visionIdsCountAcrossMessages() throws {
    let messages = [
      ChatMessage(role: "user", parts: [.image, .text("a")]),
      ChatMessage(role: "assistant", text: "b"),
      ChatMessage(role: "user", parts: [.video, .image]),
    ]
    let text = try ChatTemplate.chatML.render(messages: messages, addGenerationPrompt: false, addVisionId: true)
    #expect(text.contains("Picture 1: <|vision_start|><|image_pad|>"))
    #expect(text.contains("Video 1: <|vision_start|><|video_pad|><|vision_end|>Picture 2: "))
    #expect(!text.hasSuffix("assistant\n"))
  }

  @Test func builtInTemplateIsTheShippedOne() throws {
    #expect(ChatTemplate.qwenVLInstructSource == (try GoldenFixture.templateSource("qwen2_vl_instruct")))
  }

  @Test func extraFieldsReachTheTemplate() throws {
    let template = try ChatTemplate(source: "{{ messages[0].name }}|{{ messages[0].content | length }}|{{ eos_token }}", name: "t")
    var fields = JinjaObject()
    fields["name"] = "alice"
    let message = ChatMessage(role: "user", content: .parts([.text("x"), .image]), fields: fields)
    let text = try template.render(messages: [message], addGenerationPrompt: false, extra: ["eos_token": "<|im_end|>"])
    #expect(text == "alice|2|<|im_end|>")
  }

  @Test func noneFieldsAreDroppedAndReasoningIsAliased() throws {
    let template = try ChatTemplate(source: "{{ messages[0] | tojson }}", name: "t")
    let message: JinjaValue = .object([("role", "assistant"), ("content", "x"), ("tool_calls", .none), ("reasoning", "why")])
    let text = try template.render(messages: [message], addGenerationPrompt: false)
    #expect(text == #"{"thinking": "why", "role": "assistant", "content": "x", "reasoning": "why", "reasoning_content": "why"}"#)
  }
}
