import Foundation

/// The prompt templates of the reference systems, verbatim (their spacing included).
public enum Prompts {
  /// VLM-R1 REC training/eval prompt (method `r1`).
  public static func recR1(problem: String) -> String {
    "\(problem) First output the thinking process in <think> </think> tags and then output the final answer in <answer> </answer> tags. Output the final answer in JSON format."
  }

  /// VLM-R1 REC baseline prompt (method `baseline`).
  public static func recBaseline(caption: String) -> String {
    "Locate \(caption), output its bbox coordinates using JSON format."
  }

  /// R1-V question template; the two spaces after the question are R1-V's.
  public static func r1v(question: String) -> String {
    "\(question)  Output the thinking process in <think> </think> and final answer (number) in <answer> </answer> tags."
  }

  /// Option letters of multiple-choice prompts (A-J, as the multiple-choice reward accepts).
  public static let optionLetters = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"]

  /// A-OKVQA multiple-choice prompt: the question, lettered options, and the answer format that the
  /// multiple-choice reward parses (`Answer: X`).
  public static func multipleChoice(question: String, choices: [String]) -> String {
    var lines = [question, "Options:"]
    for (letter, choice) in zip(optionLetters, choices) { lines.append("\(letter). \(choice)") }
    lines.append(
      "First output the thinking process in <think> </think> tags, then answer with the option letter as 'Answer: X'.")
    return lines.joined(separator: "\n")
  }

  /// Region-captioning prompt used when a record carries captions but no user turn.
  public static let describeRegion = "Describe the masked region in detail."
}

/// Which of VLM-R1's two REC prompts to build.
public enum RECPromptStyle: String, Sendable, Codable {
  case r1
  case baseline
}
