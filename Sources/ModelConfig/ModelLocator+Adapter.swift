import Common
import Foundation

/// A peft LoRA adapter folder (`adapter_config.json` + `adapter_model.safetensors`, no `config.json`)
/// and the base model folder it applies to. A LoRA run's `checkpoint-N/` and `final/` are such
/// folders, so wherever a model folder is accepted an adapter folder is too: the base is loaded and
/// the adapter applied.
public struct AdapterFolder: Sendable, Equatable {
  /// The adapter folder.
  public let directory: URL
  /// The base model folder (a snapshot folder for hub ids).
  public let base: URL
  /// `base_model_name_or_path` as the file says it (or the `--base` given instead).
  public let baseName: String

  public static let configFile = "adapter_config.json"

  /// Whether `directory` holds an adapter rather than a model: `adapter_config.json` and no `config.json`.
  public static func isAdapter(_ directory: URL) -> Bool {
    let fm = FileManager.default
    return fm.fileExists(atPath: directory.appendingPathComponent(configFile).path)
      && !fm.fileExists(atPath: directory.appendingPathComponent("config.json").path)
  }

  /// Reads the adapter folder `directory`; nil when it is a model folder. The base is `base` when
  /// given (`vlmrl merge --base`), else `base_model_name_or_path`: a folder (a relative path from the
  /// working folder, as peft reads it) or a hub id found in the local cache. A base that cannot be
  /// found, or that is itself an adapter folder, is an error naming the adapter folder.
  public static func read(_ directory: URL, base: URL? = nil,
                          environment: [String: String] = ProcessInfo.processInfo.environment) throws -> AdapterFolder? {
    guard isAdapter(directory) else { return nil }
    let file = directory.appendingPathComponent(configFile)
    let baseName: String
    let baseFolder: URL
    if let base {
      baseName = base.path
      baseFolder = base.standardizedFileURL
    } else {
      let json: JSONValue
      do {
        json = try JSONValue.parse(try Data(contentsOf: file))
      } catch {
        throw ModelConfigError.invalidJSON(path: file.path, reason: "\(error)")
      }
      guard let name = json["base_model_name_or_path"]?.stringValue, !name.isEmpty else {
        throw ModelConfigError.missingField(file: file.path, field: "base_model_name_or_path")
      }
      baseName = name
      do {
        baseFolder = try ModelLocator.locate(name, environment: environment)
      } catch ModelConfigError.modelNotFound(_, let searched) {
        throw ModelConfigError.adapterBaseNotFound(adapter: directory.path, base: name, searched: searched)
      }
    }
    guard ModelLocator.isDirectory(baseFolder) else {
      throw ModelConfigError.adapterBaseNotFound(adapter: directory.path, base: baseName, searched: [baseFolder.path])
    }
    guard !isAdapter(baseFolder) else {
      throw ModelConfigError.invalidValue(
        file: file.path, field: "base_model_name_or_path",
        reason: "\(baseFolder.path) is itself a LoRA adapter folder; merge that adapter first (vlmrl merge) and name the merged folder")
    }
    return AdapterFolder(directory: directory, base: baseFolder, baseName: baseName)
  }
}

extension ModelFolder {
  /// The files besides config and weights that make a folder usable on its own (tokenizer, chat
  /// template, image processor, generation settings), as transformers' `save_pretrained` of the
  /// model, tokenizer and processor writes them.
  public static let companionFileNames = [
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt",
    "chat_template.jinja", "chat_template.json", "preprocessor_config.json", "processor_config.json",
    "video_preprocessor_config.json", "generation_config.json",
  ]

  /// Where the tokenizer, chat template, processor and generation config of `directory` come from:
  /// the folder itself when it has `tokenizer.json`; for an adapter folder without them, its base;
  /// for a training checkpoint written before checkpoints carried them, the run's `models.student`
  /// (`resolved_config.json` beside the checkpoint). Otherwise the folder itself.
  public static func companionFolder(of directory: URL, adapter: AdapterFolder?) -> URL {
    let fm = FileManager.default
    if fm.fileExists(atPath: directory.appendingPathComponent("tokenizer.json").path) { return directory }
    if let adapter { return companionFolder(of: adapter.base, adapter: nil) }
    guard fm.fileExists(atPath: directory.appendingPathComponent("trainer_state.json").path) else { return directory }
    let runConfig = directory.deletingLastPathComponent().appendingPathComponent("resolved_config.json")
    guard let data = fm.contents(atPath: runConfig.path), let config = try? JSONValue.parse(data),
      let student = config["models"]?["student"]?.stringValue,
      let source = try? ModelLocator.locate(student), source.standardizedFileURL != directory.standardizedFileURL
    else { return directory }
    return companionFolder(of: source, adapter: try? AdapterFolder.read(source))
  }
}
