import Common
import Datasets
import Foundation
import Rewards
import Testing
@testable import Evaluation

/// Extraction and scoring against hand-labelled outputs, one suite per task.
struct RECScoringTests {
  @Test func r1ReadsTheBoxInsideTheLastAnswerBlockOnly() {
    let tagged = "<think>the dog on the left</think> <answer>{\"bbox_2d\": [10, 20, 110, 220], \"label\": \"dog\"}</answer>"
    #expect(RECScoring.extractBox(tagged, method: .r1) == Box(10, 20, 110, 220))
    let twoBlocks = "<answer>[1, 2, 3, 4]</answer> no, rather <answer>[5.5, 6, 70, 80]</answer>"
    #expect(RECScoring.extractBox(twoBlocks, method: .r1) == Box(5.5, 6, 70, 80))
    // The reference needs the <answer> block; a bare box does not count under r1.
    #expect(RECScoring.extractBox("[10, 20, 110, 220]", method: .r1) == nil)
    #expect(RECScoring.extractBox("<answer>the dog</answer>", method: .r1) == nil)
  }

  @Test func baselineTakesTheFirstFourNumbersAnywhere() {
    let json = "```json\n[\n\t{\"bbox_2d\": [12.5, 30, 200, 180], \"label\": \"man in red\"}\n]\n```"
    #expect(RECScoring.extractBox(json, method: .baseline) == Box(12.5, 30, 200, 180))
    #expect(RECScoring.extractBox("The box is 10, 20, 30, 40.", method: .baseline) == Box(10, 20, 30, 40))
    // Qwen2-VL's native form (box tokens dropped when decoding).
    #expect(RECScoring.extractBox("(100,200),(300,400)", method: .baseline) == Box(100, 200, 300, 400))
    // The comma-separated run wins over earlier stray numbers.
    #expect(RECScoring.extractBox("object 1 at [7, 8, 9, 10]", method: .baseline) == Box(7, 8, 9, 10))
    #expect(RECScoring.extractBox("no box here, sorry", method: .baseline) == nil)
    #expect(RECScoring.extractBox("only 1, 2, 3", method: .baseline) == nil)
  }

  @Test func familiesReadBoxesInTheirOwnFrames() {
    #expect(RECScoring.frame(for: .qwen25VL) == .resized)
    #expect(RECScoring.frame(for: .qwen2VL) == .norm1000)
    // 640x480 shown to the model at 448x336: x scale 640/448, y scale 480/336 (both 10/7).
    let image = ImageGeometry(originalWidth: 640, originalHeight: 480, resizedWidth: 448, resizedHeight: 336)
    let truth = Box(64, 48, 320, 240)
    let resized = RECScoring.score(output: "<answer>[44.8, 33.6, 224, 168]</answer>", truth: truth, image: image,
                                   method: .r1, frame: .resized)
    #expect(resized.correct == true)
    #expect(abs((resized.values["iou"] ?? 0) - 1) < 1e-9)
    // Qwen2-VL: 0..1000, so [100, 100, 500, 500] is [64, 48, 320, 240] on a 640x480 image.
    let normalized = RECScoring.score(output: "<answer>[100, 100, 500, 500]</answer>", truth: truth, image: image,
                                      method: .r1, frame: .norm1000)
    #expect(normalized.correct == true)
    #expect(normalized.extracted?["box_original"] == .array([.double(64), .double(48), .double(320), .double(240)]))
    // Read in the wrong frame the same numbers miss: [100,100,500,500] px vs [64,48,320,240].
    let wrongFrame = RECScoring.score(output: "<answer>[100, 100, 500, 500]</answer>", truth: truth, image: image,
                                      method: .r1, frame: .original)
    // intersection 220 x 140 = 30800; union 160000 + 49152 - 30800 = 178352.
    #expect(abs((wrongFrame.values["iou"] ?? 0) - 30800.0 / 178352.0) < 1e-9)
    #expect(wrongFrame.correct == false)
  }

  @Test func accuracyNeedsIoUStrictlyAboveOneHalf() {
    let truth = Box(0, 0, 100, 100)
    // Half the box: IoU exactly 0.5 is not enough (the reference's `> 0.5`).
    let half = RECScoring.score(output: "<answer>[0, 0, 100, 50]</answer>", truth: truth, image: nil, method: .r1, frame: .original)
    #expect(half.values["iou"] == 0.5)
    #expect(half.correct == false)
    // Shifted by half a width: 5000 / 15000.
    let shifted = RECScoring.score(output: "<answer>[50, 0, 150, 100]</answer>", truth: truth, image: nil, method: .r1,
                                   frame: .original)
    #expect(abs((shifted.values["iou"] ?? 0) - 1.0 / 3.0) < 1e-12)
    let missing = RECScoring.score(output: "I cannot see it", truth: truth, image: nil, method: .r1, frame: .original)
    #expect(missing.extracted == nil && missing.correct == false && missing.values["iou"] == 0)
  }
}

struct CountingAndGeoQAScoringTests {
  @Test func countingComparesTheIntegerAnswer() {
    #expect(CountingScoring.score(output: "<think>two cubes, one ball</think><answer> 3 </answer>", truth: 3).correct == true)
    #expect(CountingScoring.score(output: "<answer>three</answer>", truth: 3).correct == true)
    #expect(CountingScoring.score(output: "<answer>4</answer>", truth: 3).correct == false)
    let wordy = CountingScoring.score(output: "<answer>3 objects</answer>", truth: 3)
    #expect(wordy.extracted == nil && wordy.correct == false)
    #expect(CountingScoring.score(output: "<answer>3.5</answer>", truth: 3).extracted == nil)
    #expect(CountingScoring.truth(.int(5)) == 5)
    #expect(CountingScoring.truth(.string("<answer> 5 </answer>")) == 5)
    #expect(CountingScoring.truth(.string("many")) == nil)
  }

  /// The reference compares the int it extracted with the string "140°" and scores 0; values match here.
  @Test func geoqaComparesValuesNotTypes() {
    #expect(GeoQAScoring.score(output: "<think>angle sum</think><answer>140</answer>", truth: "140°").correct == true)
    #expect(GeoQAScoring.score(output: "<answer>140°</answer>", truth: "140°").correct == true)
    #expect(GeoQAScoring.score(output: "<answer>40</answer>", truth: "140°").correct == false)
    #expect(GeoQAScoring.score(output: "<answer>\\sqrt{12}</answer>", truth: "2√3").correct == true)
    #expect(GeoQAScoring.score(output: "<answer>\\frac{1}{2}</answer>", truth: "0.5").correct == true)
    #expect(GeoQAScoring.truth(.int(140)) == "140")
    #expect(GeoQAScoring.score(output: "<answer>140°</answer>", truth: GeoQAScoring.truth(.int(140)) ?? "").correct == true)
    #expect(GeoQAScoring.score(output: "   ", truth: "140°").extracted == nil)
  }
}

struct AOKVQAScoringTests {
  static let truth = AOKVQAScoring.Truth(
    choices: ["cat", "dog", "bird", "fish"], correctIndex: 1,
    directAnswers: ["dog", "dog", "dog", "dog", "puppy", "puppy", "puppy", "cat", "cat", "pet"], difficult: false)

  @Test func multipleChoiceAndDirectAnswerAsTheOfficialScript() {
    let right = AOKVQAScoring.score(output: "<think>it barks</think><answer>Answer: B</answer>", truth: Self.truth)
    #expect(right.correct == true)
    #expect(right.values == ["mc_accuracy": 1, "da_accuracy": 1])  // "dog" x4: min(1, 4/3)
    let wrong = AOKVQAScoring.score(output: "<answer>C</answer>", truth: Self.truth)
    #expect(wrong.correct == false)
    #expect(wrong.values == ["mc_accuracy": 0, "da_accuracy": 0])  // "bird": no annotator said it
    // No letter: the text is the direct answer; "puppy" x3 is full credit though it is no choice.
    let free = AOKVQAScoring.score(output: "</think> Puppy", truth: Self.truth)
    #expect(free.correct == false)
    #expect(free.values["da_accuracy"] == 1)
    // The choice text "cat" picks option A (wrong) and matches two annotators: 2/3.
    let cat = AOKVQAScoring.score(output: "<answer>cat</answer>", truth: Self.truth)
    #expect(cat.extracted?["choice_index"] == .int(0))
    #expect(abs((cat.values["da_accuracy"] ?? 0) - 2.0 / 3.0) < 1e-12)
    #expect(AOKVQAScoring.directAnswerAccuracy("pet", answers: Self.truth.directAnswers) == 1.0 / 3.0)
  }

  @Test func difficultAndUnlabelledQuestionsAreLeftOutOfTheirMeans() {
    var difficult = Self.truth
    difficult.difficult = true
    #expect(AOKVQAScoring.score(output: "<answer>B</answer>", truth: difficult).values == ["mc_accuracy": 1])
    var unlabelled = Self.truth
    unlabelled.correctIndex = nil
    let score = AOKVQAScoring.score(output: "<answer>B</answer>", truth: unlabelled)
    #expect(score.correct == nil)
    #expect(score.values == ["da_accuracy": 1])
  }
}
