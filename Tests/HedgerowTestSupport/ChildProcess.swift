import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A program the tests start, with `posix_spawn` and nothing else.
///
/// Foundation's `Process` is not used: on Linux its `run()` lists `/proc/self/fd` and copies each
/// entry's whole 256-byte name out of `readdir`'s buffer, which reads past the buffer's end and
/// crashed the suite (SIGSEGV in `memcpy`) once the test process had ~1 400 descriptors open.
/// Every descriptor this type makes is close-on-exec (so are NIO's and SQLite's), so a child (a
/// PostgreSQL server, say) never holds another test's pipe open.
package final class ChildProcess: @unchecked Sendable {
    // Safe: `status` is read and written with `lock` held; the rest is immutable.

    /// Where one of the child's standard streams goes.
    package enum Stream: Sendable {
        case inherit
        case null
        /// A pipe; the parent's end is in `standardInput` / `standardOutput` / `standardError`.
        case pipe
        /// A file, truncated (stdout, stderr) or read (stdin).
        case file(String)
    }

    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    package let pid: pid_t
    /// The parent's end of each stream that is a `.pipe` (nil otherwise), closed when this is freed.
    package let standardInput: Int32?
    package let standardOutput: Int32?
    package let standardError: Int32?
    private let lock = NSLock()
    private var status: Int32?
    private var inputClosed = false

    /// Starts `executable` (a path, or a name looked up on `PATH`) with `arguments`; the
    /// environment is this process's unless one is given.
    package init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        stdin: Stream = .null, stdout: Stream = .inherit, stderr: Stream = .inherit
    ) throws {
        _ = Self.ignoreBrokenPipes
        // Pipes are made and marked close-on-exec under the lock all spawns take, so no other
        // test's child can inherit one in between.
        Self.spawnLock.lock()
        defer { Self.spawnLock.unlock() }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var childEnds: [Int32] = []
        var parentEnds: [Int32?] = []
        defer { for fd in childEnds { close(fd) } }
        do {
            for (target, stream) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
                switch stream {
                case .inherit:
                    parentEnds.append(nil)
                case .null:
                    let fd = try Self.open("/dev/null", target == 0 ? O_RDONLY : O_WRONLY)
                    childEnds.append(fd)
                    posix_spawn_file_actions_adddup2(&actions, fd, target)
                    parentEnds.append(nil)
                case .file(let path):
                    let fd = try Self.open(path, target == 0 ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC)
                    childEnds.append(fd)
                    posix_spawn_file_actions_adddup2(&actions, fd, target)
                    parentEnds.append(nil)
                case .pipe:
                    var fds: [Int32] = [-1, -1]
                    guard pipe(&fds) == 0 else { throw Failure(description: "pipe: \(Self.errorText())") }
                    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
                    let (childEnd, parentEnd) = target == 0 ? (fds[0], fds[1]) : (fds[1], fds[0])
                    childEnds.append(childEnd)
                    posix_spawn_file_actions_adddup2(&actions, childEnd, target)
                    parentEnds.append(parentEnd)
                }
            }
        } catch {
            for case let fd? in parentEnds { close(fd) }
            throw error
        }

        let argv = ([executable] + arguments).map { strdup($0) }
        let envp = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") }
        defer { for pointer in argv + envp { free(pointer) } }
        // Signals start at their defaults, unblocked: this process ignores some (SIGPIPE here; SIGTERM
        // where a signal source handles it), and a child that inherited an ignored SIGTERM could
        // never be stopped by the tests.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var pid = pid_t()
        let result = (argv + [nil]).withUnsafeBufferPointer { argvBuffer in
            (envp + [nil]).withUnsafeBufferPointer { envBuffer in
                executable.contains("/")
                    ? posix_spawn(&pid, executable, &actions, &attributes, argvBuffer.baseAddress!, envBuffer.baseAddress!)
                    : posix_spawnp(&pid, executable, &actions, &attributes, argvBuffer.baseAddress!, envBuffer.baseAddress!)
            }
        }
        guard result == 0 else {
            for case let fd? in parentEnds { close(fd) }
            throw Failure(description: "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        self.pid = pid
        (standardInput, standardOutput, standardError) = (parentEnds[0], parentEnds[1], parentEnds[2])
    }

    deinit {
        closeInput()
        for case let fd? in [standardOutput, standardError] { close(fd) }
    }

    /// Closes the parent's end of the stdin pipe: the child reads end of file.
    package func closeInput() {
        guard let fd = standardInput else { return }
        let first = lock.withLock {
            defer { inputClosed = true }
            return !inputClosed
        }
        if first { close(fd) }
    }

    /// The exit code, or the signal's number when a signal ended the child (as Foundation's
    /// `terminationStatus`); nil while it runs.
    package var exitStatus: Int32? {
        lock.withLock {
            if status == nil {
                var raw: Int32 = 0
                if waitpid(pid, &raw, WNOHANG) == pid {
                    status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : raw & 0x7f
                }
            }
            return status
        }
    }

    package var isRunning: Bool { exitStatus == nil }

    /// Waits for the child to end, blocked in `waitpid` (for synchronous callers); its `exitStatus`.
    @discardableResult
    package func wait() -> Int32 {
        var raw: Int32 = 0
        while true {
            let reaped = waitpid(pid, &raw, 0)
            if reaped == pid {
                return lock.withLock {
                    if status == nil { status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : raw & 0x7f }
                    return status!
                }
            }
            // Reaped by a concurrent `exitStatus` (ECHILD), or interrupted (EINTR): look again.
            if let status = exitStatus { return status }
        }
    }

    /// Waits for the child to end without holding a thread (async tests); its `exitStatus`. A
    /// cancelled wait kills the child.
    @discardableResult
    package func exited() async -> Int32 {
        while true {
            if let status = exitStatus { return status }
            do {
                try await Task.sleep(for: .milliseconds(5))
            } catch {
                signal(SIGKILL)
                return wait()
            }
        }
    }

    package func signal(_ number: Int32 = SIGTERM) {
        if isRunning { kill(pid, number) }
    }

    /// Everything the child writes to `fd` until it closes it.
    package static func readAll(_ fd: Int32) -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                data.append(contentsOf: buffer[0..<count])
            } else if count == 0 || errno != EINTR {
                return data
            }
        }
    }

    /// Writes all of `data` to the child's stdin pipe, then closes it.
    package func send(_ data: Data) {
        guard let fd = standardInput else { return }
        Self.writeAll(data, to: fd)
        closeInput()
    }

    private static func writeAll(_ data: Data, to fd: Int32) {
        data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written > 0 {
                    offset += written
                } else if errno != EINTR {
                    break
                }
            }
        }
    }

    /// What a program printed, and how it ended.
    package struct Output: Sendable {
        package var status: Int32
        package var stdout: Data
        package var stderr: Data
    }

    /// Runs a program to its end, feeding it `input`; stdout and stderr are drained side by side so
    /// neither pipe can fill up and stall the child.
    package static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, input: Data? = nil
    ) throws -> Output {
        let child = try ChildProcess(
            executable, arguments, environment: environment, stdin: input == nil ? .null : .pipe, stdout: .pipe, stderr: .pipe)
        if let input { DispatchQueue.global().async { child.send(input) } }
        let errorData = LockedData()
        let group = DispatchGroup()
        group.enter()
        let errFD = child.standardError!
        DispatchQueue.global().async {
            errorData.set(readAll(errFD))
            group.leave()
        }
        let stdout = readAll(child.standardOutput!)
        group.wait()
        return Output(status: child.wait(), stdout: stdout, stderr: errorData.get())
    }

    private static let spawnLock = NSLock()

    /// A child that exits before reading all its input must not kill the tests with SIGPIPE.
    private static let ignoreBrokenPipes: Void = { _ = Glibc.signal(SIGPIPE, SIG_IGN) }()

    private static func open(_ path: String, _ flags: Int32) throws -> Int32 {
        let fd = Glibc.open(path, flags | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Failure(description: "cannot open \(path): \(errorText())") }
        return fd
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}

/// A value one thread writes and another reads after a `DispatchGroup.wait()`.
private final class LockedData: @unchecked Sendable {
    // Safe: every access holds `lock`.
    private let lock = NSLock()
    private var data = Data()
    func set(_ value: Data) { lock.withLock { data = value } }
    func get() -> Data { lock.withLock { data } }
}
