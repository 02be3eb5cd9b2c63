import Foundation

/// Files only Hedgerow's user may read: the data directory (0700: it holds the secret key, the
/// database and the initial key), the SQLite database and its WAL and shared-memory files (0600;
/// SQLite gives the WAL and shm files the database file's mode when it creates them).
package enum PrivateFiles {
    /// Creates `path` (and missing parents) as 0700. An existing directory is made 0700 only when it
    /// is plainly Hedgerow's own, one an earlier release made (it holds `secret-key` or
    /// `hedgerow.sqlite`, and is not a shared sticky directory such as /tmp); any other is left as it is.
    package static func directory(_ path: String) throws {
        let files = FileManager.default
        guard files.fileExists(atPath: path) else {
            try files.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            return
        }
        let mode = (try files.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? 0
        let ours = ["secret-key", "hedgerow.sqlite"].contains { files.fileExists(atPath: (path as NSString).appendingPathComponent($0)) }
        if ours, mode & 0o1000 == 0, mode & 0o077 != 0 {
            try files.setAttributes([.posixPermissions: 0o700], ofItemAtPath: path)
        }
    }

    /// Creates the SQLite database at `path` as an empty 0600 file before SQLite opens it, or makes an
    /// existing one (and its `-wal` and `-shm` files) 0600. A directory it is created in is made 0700.
    package static func database(_ path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) { try self.directory(directory) }
        let descriptor = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        close(descriptor)
        for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
        }
    }
}
