import Testing
@testable import Torch

/// Out-of-memory failures are told apart from bugs by libtorch's messages and reported in one line.
@Suite struct OutOfMemoryTests {
  static let cuda = """
    CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which 1.06 GiB is free. \
    Including non-PyTorch memory, this process has 78.12 GiB memory in use.
    Exception raised from malloc at /pytorch/c10/cuda/CUDACachingAllocator.cpp:1000 (most recent call first):
    frame #0: c10::Error::Error(...)
    """
  static let cpu = "[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate memory: you tried to allocate 8796093022208 bytes. Error code 12 (Cannot allocate memory)"

  @Test func messagesAreRecognised() {
    #expect(OutOfMemory.matches(Self.cuda) && OutOfMemory.matches(Self.cpu))
    #expect(!OutOfMemory.matches("Expected all tensors to be on the same device"))
    #expect(!OutOfMemory.matches("shape '[2, 3]' is invalid for input of size 5"))
  }

  @Test func oneLineNamesTheDeviceTheSizeAndWhatToLower() {
    let gpu = OutOfMemory.line(op: "matmul", message: Self.cuda)
    #expect(!gpu.contains("\n") && gpu.contains("out of GPU memory in matmul") && gpu.contains("Tried to allocate 2.00 GiB"))
    #expect(gpu.contains("per_device_train_batch_size") && gpu.contains("--resume") && !gpu.contains("frame #0"))
    let host = OutOfMemory.line(op: "zeros", message: Self.cpu)
    #expect(host.contains("out of host memory in zeros") && host.contains("8796093022208 bytes"))
  }
}
