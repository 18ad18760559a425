import Common
import Foundation
import Testing

@testable import Datasets

@Suite struct KindTests {
  @Test func singleAndMultiBoxFromMMKDShapes() throws {
    let folder = try makeTempFolder()
    try writePNG(folder, "345.png", width: 40, height: 30)
    try writeText(folder, "single.json", """
      [{"image_path": "345.png", "height": 30, "width": 40, "instruction": "Find the button.", "bbox": [5, 6, 20, 25]}]
      """)
    try writeText(folder, "multi.json", """
      [{"image_path": "345.png", "height": 30, "width": 40, "instruction": "Label tags 0, 1.",
        "abs_box": {"0": [[1, 2, 10, 12]], "1": [], "2": [[3, 3, 9, 9], [20, 20, 39, 29]]}}]
      """)
    let single = try DatasetLoader.load(path: folder.appendingPathComponent("single.json").path)
    let example = try #require(single.examples.first)
    #expect(example.kind == .singleBox)
    #expect(example.rewardFields["bbox"] == .array([.int(5), .int(6), .int(20), .int(25)]))
    #expect(example.images.first?.width == 40 && example.images.first?.height == 30)
    #expect(example.renderedPrompt == "<image>Find the button.")
    #expect(example.images.first?.source == .file(folder.appendingPathComponent("345.png")))

    let multi = try DatasetLoader.load(path: folder.appendingPathComponent("multi.json").path)
    let boxes = try #require(multi.examples.first?.rewardFields["abs_box"]?.objectValue)
    #expect(multi.examples.first?.kind == .multiBox)
    #expect(boxes["1"] == .array([]))
    #expect(boxes["2"]?.arrayValue?.count == 2)
  }

  @Test func recPromptsAreVLMR1s() throws {
    let folder = try makeTempFolder()
    try writePNG(folder, "coco/a.png", width: 64, height: 48)
    try writeText(folder, "rec.json", """
      [{"image": "a.png", "problem": "the man on the left", "solution": [1.5, 2, 30.25, 40], "normal_caption": "the man"}]
      """)
    var options = LoadOptions()
    let path = folder.appendingPathComponent("rec.json").path
    let root = folder.appendingPathComponent("coco").path
    let r1 = try DatasetLoader.load(path: path, imageRoot: root, options: options)
    let example = try #require(r1.examples.first)
    #expect(example.kind == .rec)
    #expect(textPart(example) == "the man on the left First output the thinking process in <think> </think> tags and then output the final answer in <answer> </answer> tags. Output the final answer in JSON format.")
    #expect(example.rewardFields["solution"] == .array([.double(1.5), .int(2), .double(30.25), .int(40)]))
    #expect(example.images.first?.width == 64 && example.images.first?.height == 48)
    options.recPrompt = .baseline
    let baseline = try DatasetLoader.load(path: path, imageRoot: root, options: options)
    #expect(baseline.examples.first.flatMap(textPart) == "Locate the man, output its bbox coordinates using JSON format.")
  }

  @Test func r1vQAAndTestLines() throws {
    let folder = try makeTempFolder()
    try writePNG(folder, "img.png", width: 8, height: 8)
    try writeText(folder, "qa.jsonl", """
      {"image": "img.png", "problem": "How many cubes?", "solution": "<answer> 3 </answer>"}

      {"image_path": "img.png", "question": "What is the angle?", "ground_truth": "140°"}
      {"image_path": "img.png", "question": "How many?", "ground_truth": 4}
      """)
    let loaded = try DatasetLoader.load(path: folder.appendingPathComponent("qa.jsonl").path)
    #expect(loaded.examples.map(\.kind) == [.r1vQA, .r1vTest, .r1vTest])
    #expect(textPart(loaded.examples[0]) == "How many cubes?  Output the thinking process in <think> </think> and final answer (number) in <answer> </answer> tags.")
    #expect(loaded.examples[0].rewardFields["solution"] == .string("<answer> 3 </answer>"))
    #expect(loaded.examples[1].rewardFields["ground_truth"] == .string("140°"))
    #expect(loaded.examples[2].rewardFields["ground_truth"] == .int(4))
    #expect(loaded.examples[2].source.index == 2)  // the blank line is not a record
  }

  @Test func sftConversationImageMarkers() throws {
    let folder = try makeTempFolder()
    try writePNG(folder, "a.png", width: 8, height: 8)
    try writePNG(folder, "b.png", width: 9, height: 5)
    try writeText(folder, "sft.json", """
      [{"image": ["a.png", "b.png"], "conversations": [
          {"from": "human", "value": "Compare <image> with <image> please"},
          {"from": "gpt", "value": "They differ."}]},
       {"image": "a.png", "conversations": [{"from": "human", "value": "Describe."}, {"from": "gpt", "value": "Gray."}]},
       {"image": "a.png", "conversations": [{"from": "human", "value": "<image><image> two?"}, {"from": "gpt", "value": "x"}]}]
      """)
    let loaded = try DatasetLoader.load(path: folder.appendingPathComponent("sft.json").path)
    #expect(loaded.examples.count == 2)
    let first = loaded.examples[0]
    let a = ImageSource.file(folder.appendingPathComponent("a.png"))
    let b = ImageSource.file(folder.appendingPathComponent("b.png"))
    #expect(first.prompt == [.text("Compare "), .image(a), .text(" with "), .image(b), .text(" please")])
    #expect(first.conversation == [
      ConversationTurn(role: "user", text: "Compare <image> with <image> please"),
      ConversationTurn(role: "assistant", text: "They differ."),
    ])
    #expect(first.images.map(\.width) == [8, 9])
    #expect(loaded.examples[1].prompt == [.image(a), .text("Describe.")])
    #expect(loaded.summary.skippedByReason == [.imageMarkerMismatch: 1])
  }

  @Test func aokvqaOriginalJSONWithImageID() throws {
    let folder = try makeTempFolder()
    try writePNG(folder, "val2017/000000299207.png", width: 10, height: 10)
    try FileManager.default.moveItem(
      at: folder.appendingPathComponent("val2017/000000299207.png"),
      to: folder.appendingPathComponent("val2017/000000299207.jpg"))
    try writeText(folder, "aokvqa_v1p0_val.json", """
      [{"question_id": "22MexNkBPpdZGX6sxbxVBH", "image_id": 299207, "question": "What is the man by the bags awaiting?",
        "choices": ["skateboarder", "train", "delivery", "cab"], "correct_choice_idx": 3,
        "direct_answers": ["ride", "ride", "bus", "taxi"], "difficult_direct_answer": false, "rationales": ["r"]}]
      """)
    var options = LoadOptions()
    options.probeImageSizes = false  // the file is a PNG named .jpg; only its path matters here
    let loaded = try DatasetLoader.load(
      path: folder.appendingPathComponent("aokvqa_v1p0_val.json").path,
      imageRoot: folder.appendingPathComponent("val2017").path, options: options)
    let example = try #require(loaded.examples.first)
    #expect(example.kind == .aokvqa)
    #expect(example.rewardFields["label_idx"] == .int(3))
    #expect(example.rewardFields["direct_answers"] == .array(["ride", "ride", "bus", "taxi"].map { .string($0) }))
    #expect(example.images.first?.source == .file(folder.appendingPathComponent("val2017/000000299207.jpg")))
    #expect(textPart(example) == """
      What is the man by the bags awaiting?
      Options:
      A. skateboarder
      B. train
      C. delivery
      D. cab
      First output the thinking process in <think> </think> tags, then answer with the option letter as 'Answer: X'.
      """)
  }

  @Test func regionCaptionWithJudgeQuestions() throws {
    let folder = try makeTempFolder()
    try writePNG(folder, "r.png", width: 6, height: 4)
    try writeText(folder, "gar.jsonl", """
      {"image": "r.png", "mask_rle": {"size": [4, 6], "counts": "0c1"}, "conversations": [{"from": "human", "value": "<image>\\nWhat is here?"}, {"from": "gpt", "value": "A cat."}], "judge_questions": [{"q": "Is it a cat?", "a": "yes"}]}
      {"image": "r.png", "mask_rle": [{"size": [4, 6], "counts": [0, 3, 21]}], "conversations": ["A dog.", "A brown dog."]}
      {"image": "r.png", "mask_rle": {"counts": "0c1"}, "conversations": ["x"]}
      """)
    let loaded = try DatasetLoader.load(path: folder.appendingPathComponent("gar.jsonl").path)
    #expect(loaded.examples.map(\.kind) == [.regionCaption, .regionCaption])
    let image = ImageSource.file(folder.appendingPathComponent("r.png"))
    #expect(loaded.examples[0].prompt == [.image(image), .text("\nWhat is here?")])
    #expect(loaded.examples[0].rewardFields["captions"] == .array([.string("A cat.")]))
    #expect(loaded.examples[0].rewardFields["judge_questions"]?.arrayValue?.count == 1)
    #expect(loaded.examples[1].prompt == [.image(image), .text(Prompts.describeRegion)])
    #expect(loaded.examples[1].rewardFields["captions"] == .array([.string("A dog."), .string("A brown dog.")]))
    #expect(loaded.summary.badRecords.first?.field == "mask_rle")
  }

  @Test func embeddedDataURLImage() throws {
    let folder = try makeTempFolder()
    let png = try Data(contentsOf: writePNG(folder, "x.png", width: 3, height: 2))
    try writeText(folder, "d.jsonl", """
      {"image": "data:image/png;base64,\(png.base64EncodedString())", "problem": "Count.", "solution": "<answer> 1 </answer>"}
      """)
    let loaded = try DatasetLoader.load(path: folder.appendingPathComponent("d.jsonl").path)
    let info = try #require(loaded.examples.first?.images.first)
    #expect(info.width == 3 && info.height == 2)
    guard case .bytes(let data, _) = info.source else { Issue.record("expected embedded bytes"); return }
    #expect(data == png)
  }

  @Test func explicitKindOverridesDetection() throws {
    let folder = try makeTempFolder()
    try writePNG(folder, "i.png", width: 8, height: 8)
    // `solution` is a list, so detection says REC; the YAML names R1-V QA and the record is then bad.
    try writeText(folder, "x.json", #"[{"image": "i.png", "problem": "p", "solution": [1, 1, 4, 4]}]"#)
    let detected = try DatasetLoader.load(path: folder.appendingPathComponent("x.json").path)
    #expect(detected.examples.first?.kind == .rec)
    let named = try DatasetLoader.load(path: folder.appendingPathComponent("x.json").path, kind: .r1vQA)
    #expect(named.examples.isEmpty)
    #expect(named.summary.skippedByReason == [.wrongType: 1])
  }

  @Test func pythonListLiterals() {
    #expect(PythonLiteral.parseStringList("['a', \"it's\", 'b\\'c']") == ["a", "it's", "b'c"])
    #expect(PythonLiteral.parseStringList("[]") == [])
    #expect(PythonLiteral.parseStringList("['unterminated]") == nil)
    #expect(PythonLiteral.parseStringList("not a list") == nil)
  }
}
