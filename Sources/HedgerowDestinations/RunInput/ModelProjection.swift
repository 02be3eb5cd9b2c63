import HedgerowCore
import HedgerowFormats
import HedgerowStore

/// What a run delivers: the rows of its export's model, a batch at a time.
package enum RunRecords: Sendable {
    case events(EventBatches)
    case persons(RecordBatches<PersonRecord>)
    case sessions(RecordBatches<Session>)

    package var model: ExportModel {
        switch self {
        case .events: .events
        case .persons: .persons
        case .sessions: .sessions
        }
    }
}

/// A model's file columns and its rows, a batch at a time (for every destination that writes files).
struct FileRows {
    let columns: [FileColumn]
    let next: () async throws -> RowBatch?

    init(_ records: RunRecords) {
        switch records {
        case .events(let batches): (columns, next) = (EventProjection.fileColumns, RowBatch.eventFilePages(batches))
        case .persons(let batches): (columns, next) = (ModelProjection.personColumns, RowBatch.pages(batches, ModelProjection.personRow))
        case .sessions(let batches):
            (columns, next) = (ModelProjection.sessionColumns, RowBatch.pages(batches, ModelProjection.sessionRow))
        }
    }
}

/// One page of a model's rows: the records as they were read, each made a row of file values only
/// when it is asked for, so a page is held once (as records) rather than a second time as rows.
struct RowBatch {
    let count: Int
    private let make: (Int) throws(DestinationError) -> [FileValue]
    /// Appends the row at an index to an encoder cell by cell, for records that write their own
    /// cells; nil: through `make`.
    private let appendRow: ((Int, any FileEncoder) -> Void)?

    init(
        count: Int, _ make: @escaping (Int) throws(DestinationError) -> [FileValue],
        appendRow: ((Int, any FileEncoder) -> Void)? = nil
    ) {
        self.count = count
        self.make = make
        self.appendRow = appendRow
    }

    /// The row of the page's record at `index` (0..<count).
    func row(_ index: Int) throws(DestinationError) -> [FileValue] { try make(index) }

    /// Appends the row at `index` to `encoder`, without making its values when the records write
    /// their own cells.
    func append(_ index: Int, to encoder: any FileEncoder) throws(DestinationError) {
        if let appendRow { appendRow(index, encoder) } else { encoder.append(try make(index)) }
    }

    /// The same rows with only the values at `indices`, in their order.
    func selecting(_ indices: [Int]) -> RowBatch {
        RowBatch(count: count) { (index) throws(DestinationError) in
            let values = try make(index)
            return indices.map { values[$0] }
        }
    }

    /// Pages of events as their file rows, appended to an encoder cell by cell.
    static func eventFilePages<Pages: AsyncSequence>(_ batches: Pages) -> () async throws -> RowBatch? where Pages.Element == [Event] {
        var iterator = batches.makeAsyncIterator()
        return {
            guard let page = try await iterator.next() else { return nil }
            return RowBatch(count: page.count, { index in EventProjection.fileRow(page[index]) }) { index, encoder in
                encoder.append(EventProjection.PageRow(page: page, index: index))
            }
        }
    }

    /// The pages of `batches` as row batches of `row`.
    static func pages<Pages: AsyncSequence, Record>(
        _ batches: Pages, _ row: @escaping (Record) throws(DestinationError) -> [FileValue]
    ) -> () async throws -> RowBatch? where Pages.Element == [Record] {
        var iterator = batches.makeAsyncIterator()
        return {
            guard let page = try await iterator.next() else { return nil }
            return RowBatch(count: page.count) { (index) throws(DestinationError) in try row(page[index]) }
        }
    }
}

/// The columns of the persons and sessions models (PostHog's, in its order) and their rows, for
/// files and for the warehouses that merge them.
package enum ModelProjection {
    package static let personColumns: [FileColumn] = [
        FileColumn("team_id", .int64), FileColumn("distinct_id", .string), FileColumn("person_id", .string),
        FileColumn("properties", .json), FileColumn("person_distinct_id_version", .int64), FileColumn("person_version", .int64),
        FileColumn("created_at", .timestamp), FileColumn("_inserted_at", .timestamp), FileColumn("is_deleted", .boolean),
    ]

    static func personRow(_ person: PersonRecord) -> [FileValue] {
        [
            .int(person.teamID), .string(person.distinctID), .string(person.personID), .json(person.properties),
            .int(person.distinctIDVersion), .int(person.personVersion), .timestamp(person.createdAt), .timestamp(person.insertedAt),
            .bool(person.isDeleted),
        ]
    }

    package static let sessionColumns: [FileColumn] =
        [
            FileColumn("session_id", .string), FileColumn("session_id_v7", .string), FileColumn("team_id", .int64),
            FileColumn("distinct_id", .string), FileColumn("start_timestamp", .timestamp), FileColumn("end_timestamp", .timestamp),
            // A list of strings: a JSON array in files, TEXT[] in PostgreSQL.
            FileColumn("urls", .json), FileColumn("num_uniq_urls", .int64),
        ]
        + ["entry", "end", "exit"].flatMap { place in
            ["current_url", "pathname", "hostname"].map { FileColumn("\(place)_\($0)", .string) }
        }
        + SessionFacts.attributionKeys.map { FileColumn("entry_\($0)", .string) }
        + [
            FileColumn("pageview_count", .int64), FileColumn("autocapture_count", .int64), FileColumn("screen_count", .int64),
            FileColumn("channel_type", .string), FileColumn("session_duration", .int64), FileColumn("duration", .int64),
            FileColumn("is_bounce", .boolean), FileColumn("last_external_click_url", .string),
            FileColumn("page_screen_autocapture_count_up_to", .int64), FileColumn("vitals_lcp", .double),
            FileColumn("_inserted_at", .timestamp),
        ]

    package static func sessionRow(_ session: Session) -> [FileValue] {
        func text(_ value: String?) -> FileValue { value.map(FileValue.string) ?? .null }
        let places = [session.entryURL?.value, session.endURL?.value, session.exitURL]
        var row: [FileValue] = [
            .string(session.sessionID), text(session.sessionIDv7), .int(session.teamID), .string(session.distinctID.value),
            .timestamp(Timestamp(microseconds: session.start)), .timestamp(Timestamp(microseconds: session.end)),
            .json(JSONWriter.string(.array(session.urls.map(JSONValue.string)))), .int(Int64(session.urls.count)),
        ]
        row.reserveCapacity(sessionColumns.count)
        for url in places { row += [text(url), text(URLParts.pathname(url)), text(URLParts.hostname(url))] }
        for key in SessionFacts.attributionKeys { row.append(text(session.entry(key))) }
        row += [
            .int(session.pageviews), .int(session.autocaptures), .int(session.screens), .string(session.channelType),
            .int(session.durationSeconds), .int(session.durationSeconds), session.isBounce.map(FileValue.bool) ?? .null,
            text(session.lastExternalClickURL?.value), .int(session.pageScreenAutocaptureCountUpTo),
            session.lcp.map { .double($0.value) } ?? .null,
            // PostHog's `_inserted_at` of a session: the later of its last change and its end.
            .timestamp(Timestamp(microseconds: max(session.updatedAt, session.end))),
        ]
        return row
    }
}

/// A model's rows as the warehouses take them (stage tables, then a merge or an insert): the
/// events' warehouse columns, the persons' and sessions' columns without `_inserted_at` (a
/// control column, which PostHog writes to files only).
struct WarehouseRows {
    let columns: [FileColumn]
    let next: () async throws -> RowBatch?

    init(_ records: RunRecords) {
        switch records {
        case .events(let batches):
            (columns, next) = (EventProjection.warehouseColumns, RowBatch.pages(batches, EventProjection.warehouseRow))
        case .persons(let batches): (columns, next) = Self.withoutControl(batches, ModelProjection.personColumns, ModelProjection.personRow)
        case .sessions(let batches):
            (columns, next) = Self.withoutControl(batches, ModelProjection.sessionColumns, ModelProjection.sessionRow)
        }
    }

    /// A model's file columns and rows without `_inserted_at`.
    static func withoutControl<Row: Sendable>(
        _ batches: RecordBatches<Row>, _ all: [FileColumn], _ row: @escaping (Row) -> [FileValue]
    ) -> ([FileColumn], () async throws -> RowBatch?) {
        let keep = all.indices.filter { all[$0].name != "_inserted_at" }
        let pages = RowBatch.pages(batches, row)
        return (keep.map { all[$0] }, { try await pages()?.selecting(keep) })
    }

    /// The merge key and the version columns of a mutable model (a row replaces the stored one
    /// only when one of them is greater); nil for events, which are only ever inserted.
    static func mergeRule(model: ExportModel) -> (key: [String], versions: [String])? {
        switch model {
        case .persons: (["team_id", "distinct_id"], ["person_version", "person_distinct_id_version"])
        case .sessions: (["team_id", "session_id"], ["end_timestamp"])
        case .events: nil
        }
    }

    /// Columns that hold a list of strings (a JSON array in files).
    static let listColumns: Set<String> = ["urls"]
}
