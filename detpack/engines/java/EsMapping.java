/*
 * detpack: Elasticsearch field mapping, as the Lucene query-string engine needs it.
 *
 * Written for detpack from Elasticsearch's documented mapping behaviour (links in detpack/engines/lucene.py).
 * Resolves dotted field names to Elasticsearch field types the way a mapping does: explicit fields, glob
 * patterns (dynamic templates such as "kubernetes.audit.annotations.*"), objects implied by their subfields,
 * multi-fields ("process.command_line.text" under the wildcard field "process.command_line"), sub-keys of
 * flattened fields, and fields created by dynamic mapping while documents are indexed.
 */
package detpack.lucene;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

public final class EsMapping {

    /** How a field type is indexed and queried. */
    public enum Kind { KEYWORD, TEXT, LONG, FLOAT, DOUBLE, IP, BOOLEAN, DATE, FLATTENED, OBJECT, NESTED, OPAQUE }

    /** A concrete field: its dotted name, its Elasticsearch type and how it is indexed. */
    public static final class Field {
        public final String name;
        public final String type;
        public final Kind kind;
        /** For a sub-key of a flattened field: the flattened field; otherwise null. */
        public final String flattenedRoot;

        Field(String name, String type, Kind kind, String flattenedRoot) {
            this.name = name;
            this.type = type;
            this.kind = kind;
            this.flattenedRoot = flattenedRoot;
        }

        public boolean isKeyedFlattened() {
            return flattenedRoot != null;
        }

        /**
         * Where a flattened field keeps its keyed values: Elasticsearch indexes `{"labels": {"a": "x"}}` as the
         * term "x" in `labels` and the term "a\0x" in `labels._keyed`.
         */
        public String keyedField() {
            return flattenedRoot + KEYED_SUFFIX;
        }

        /** The keyed term of a value: the key (the path below the flattened field), NUL, the value. */
        public String keyed(String value) {
            return name.substring(flattenedRoot.length() + 1) + "\0" + value;
        }

        /** The type named in Elasticsearch's error messages. */
        public String esType() {
            return flattenedRoot != null ? "flattened" : type;
        }
    }

    /** Base of the errors the Python side translates into its own exceptions. */
    public static class EsException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        EsException(String message) {
            super(message);
        }
    }

    /** The query names a field the mapping does not have (Elasticsearch would silently match nothing). */
    public static final class UnknownFieldException extends EsException {
        private static final long serialVersionUID = 1L;

        public final String field;

        UnknownFieldException(String field, String message) {
            super(message);
            this.field = field;
        }
    }

    /** Elasticsearch would reject the query for this mapping (HTTP 400, "failed to create query"). */
    public static final class QueryException extends EsException {
        private static final long serialVersionUID = 1L;

        QueryException(String message) {
            super(message);
        }
    }

    /** Elasticsearch would reject the document (mapper_parsing_exception). */
    public static final class DocumentException extends EsException {
        private static final long serialVersionUID = 1L;

        DocumentException(String message) {
            super(message);
        }
    }

    static final String KEYED_SUFFIX = "._keyed";
    /** Elasticsearch's metadata field listing the fields whose malformed values were ignored. */
    static final String IGNORED = "_ignored";

    private static final Map<String, Kind> KINDS = new HashMap<>();

    static {
        for (String t : new String[] {"keyword", "constant_keyword", "wildcard", "version"}) {
            KINDS.put(t, Kind.KEYWORD);
        }
        KINDS.put("text", Kind.TEXT);
        KINDS.put("match_only_text", Kind.TEXT);
        for (String t : new String[] {"long", "integer", "short", "byte", "unsigned_long"}) {
            KINDS.put(t, Kind.LONG);
        }
        KINDS.put("float", Kind.FLOAT);
        KINDS.put("half_float", Kind.FLOAT);
        KINDS.put("double", Kind.DOUBLE);
        KINDS.put("scaled_float", Kind.DOUBLE);
        KINDS.put("ip", Kind.IP);
        KINDS.put("boolean", Kind.BOOLEAN);
        KINDS.put("date", Kind.DATE);
        KINDS.put("date_nanos", Kind.DATE);
        KINDS.put("flattened", Kind.FLATTENED);
        KINDS.put("object", Kind.OBJECT);
        KINDS.put("nested", Kind.NESTED);
        for (String t : new String[] {"geo_point", "geo_shape", "binary", "histogram", "dense_vector"}) {
            KINDS.put(t, Kind.OPAQUE);
        }
    }

    /**
     * The Kind for an Elasticsearch type name; IllegalArgumentException for types the engine does not know.
     * `object(<type>)` (an integration's object with object_type: every sub-field has that type) is an object.
     */
    public static Kind kindOf(String type) {
        if (type.startsWith("object(") && type.endsWith(")")) {
            return Kind.OBJECT;
        }
        Kind kind = KINDS.get(type);
        if (kind == null) {
            throw new IllegalArgumentException("unsupported Elasticsearch field type [" + type + "]");
        }
        return kind;
    }

    private final Map<String, String> exact = new HashMap<>();
    private final List<Pattern> patterns = new ArrayList<>();
    private final List<String> patternTypes = new ArrayList<>();
    private final Set<String> implicitObjects = new HashSet<>();
    private final Map<String, List<Field>> multiFields = new HashMap<>();
    /**
     * Objects whose sub-fields are all mapped (an object's sub-fields are mapped dynamically when they appear):
     * the type of every sub-field for `object(<type>)`, or "" for dynamic mapping by the value's JSON kind.
     */
    private final Map<String, String> openObjects = new HashMap<>();
    /** Concrete fields met while indexing that were not named explicitly (patterns and dynamic mapping). */
    private final Map<String, Field> discovered = new LinkedHashMap<>();
    private final Map<String, Field> indexCache = new HashMap<>();

    public EsMapping(String[] names, String[] types) {
        if (names.length != types.length) {
            throw new IllegalArgumentException("names and types differ in length");
        }
        for (int i = 0; i < names.length; i++) {
            Kind declared = kindOf(types[i]);
            if (declared == Kind.OBJECT && (names[i].endsWith(".*") || names[i].indexOf('*') < 0)) {
                // "a.b": object, "a.b.*": object, "a.b[.*]": object(keyword): a.b is an open object
                String object = names[i].endsWith(".*") ? names[i].substring(0, names[i].length() - 2) : names[i];
                String inner = types[i].startsWith("object(") ? types[i].substring(7, types[i].length() - 1) : "";
                boolean leafType = KINDS.containsKey(inner) && isLeaf(KINDS.get(inner));
                openObjects.put(object, leafType ? inner : "");
                implicitObjects.add(object);
                implicitObjects.addAll(ancestors(object));
                continue;
            }
            if (names[i].indexOf('*') >= 0) {
                patterns.add(globPattern(names[i]));
                patternTypes.add(types[i]);
                // "a.b.*" (a dynamic template on the object a.b) implies the objects a and a.b
                String head = names[i].substring(0, names[i].indexOf('*'));
                if (head.endsWith(".")) {
                    String object = head.substring(0, head.length() - 1);
                    implicitObjects.add(object);
                    implicitObjects.addAll(ancestors(object));
                }
            } else {
                exact.put(names[i], types[i]);
            }
        }
        for (String name : exact.keySet()) {
            for (String ancestor : ancestors(name)) {
                if (!exact.containsKey(ancestor)) {
                    implicitObjects.add(ancestor);
                }
            }
            int dot = name.lastIndexOf('.');
            if (dot > 0) {
                String parent = name.substring(0, dot);
                String parentType = exact.get(parent);
                if (parentType != null && isLeaf(kindOf(parentType)) && kindOf(parentType) != Kind.FLATTENED) {
                    multiFields.computeIfAbsent(parent, k -> new ArrayList<>())
                        .add(new Field(name, exact.get(name), kindOf(exact.get(name)), null));
                }
            }
        }
    }

    static boolean isLeaf(Kind kind) {
        return kind != Kind.OBJECT && kind != Kind.NESTED;
    }

    /** Proper ancestors of a dotted name, shortest first: a.b.c -> [a, a.b]. */
    static List<String> ancestors(String name) {
        List<String> out = new ArrayList<>();
        int dot = name.indexOf('.');
        while (dot > 0) {
            out.add(name.substring(0, dot));
            dot = name.indexOf('.', dot + 1);
        }
        return out;
    }

    /** A glob with '*' as the only wildcard, as Elasticsearch field patterns are. */
    static Pattern globPattern(String glob) {
        StringBuilder sb = new StringBuilder();
        String[] parts = glob.split("\\*", -1);
        for (int i = 0; i < parts.length; i++) {
            if (i > 0) {
                sb.append(".*");
            }
            if (!parts[i].isEmpty()) {
                sb.append(Pattern.quote(parts[i]));
            }
        }
        return Pattern.compile(sb.toString(), Pattern.DOTALL);
    }

    private String patternType(String name) {
        for (int i = 0; i < patterns.size(); i++) {
            if (patterns.get(i).matcher(name).matches()) {
                return patternTypes.get(i);
            }
        }
        return null;
    }

    /** For a sub-field of an open object (the nearest one): the type of its sub-fields, "" for dynamic; else null. */
    private String openObjectType(String name) {
        List<String> up = ancestors(name);
        for (int i = up.size() - 1; i >= 0; i--) {
            String type = openObjects.get(up.get(i));
            if (type != null) {
                return type;
            }
        }
        return null;
    }

    /** Multi-fields of a field ("process.command_line.text" for "process.command_line"). */
    List<Field> multiFieldsOf(String name) {
        List<Field> out = multiFields.get(name);
        return out == null ? Collections.emptyList() : out;
    }

    /**
     * The field a query names. Throws UnknownFieldException when the mapping does not have it, or when it is
     * (inside) a nested field, which query_string never searches.
     */
    public Field resolveForQuery(String name) {
        if (IGNORED.equals(name)) {
            return new Field(name, "keyword", Kind.KEYWORD, null);
        }
        for (String ancestor : ancestors(name)) {
            String type = exact.get(ancestor);
            if (type == null) {
                continue;
            }
            Kind kind = kindOf(type);
            if (kind == Kind.NESTED) {
                throw new UnknownFieldException(name, "field [" + name + "] is inside the nested field [" + ancestor
                    + "]: query_string queries do not search nested documents, so Elasticsearch matches nothing");
            }
            if (kind == Kind.FLATTENED) {
                return new Field(name, "keyword", Kind.KEYWORD, ancestor);
            }
            if (isLeaf(kind) && !exact.containsKey(name)) {
                throw new UnknownFieldException(name, "field [" + name + "] is not in the mapping: [" + ancestor
                    + "] is a field of type [" + type + "] and has no such sub-field");
            }
        }
        String type = exact.get(name);
        if (type == null) {
            type = patternType(name);
        }
        if (type != null) {
            Kind kind = kindOf(type);
            if (kind == Kind.NESTED) {
                throw new UnknownFieldException(name, "field [" + name + "] is a nested field: query_string "
                    + "queries do not search nested documents, so Elasticsearch matches nothing");
            }
            return new Field(name, type, kind, null);
        }
        if (implicitObjects.contains(name)) {
            return new Field(name, "object", Kind.OBJECT, null);
        }
        String open = openObjectType(name);
        if (open != null) {
            if (!open.isEmpty()) {
                return new Field(name, open, kindOf(open), null);
            }
            Field seen = discovered.get(name);
            // mapped dynamically from the documents; a field no document has is matched as a keyword
            return seen != null ? seen : new Field(name, "keyword", Kind.KEYWORD, null);
        }
        throw new UnknownFieldException(name, "field [" + name + "] is not in the mapping");
    }

    /** True when the name resolves to an analysed (text) field; never throws. */
    boolean isText(String name) {
        Field f = indexCache.get(name);
        if (f == null) {
            try {
                f = resolveForQuery(name);
            } catch (EsException e) {
                return false;
            }
        }
        return f.kind == Kind.TEXT;
    }

    /**
     * The field a document value at this path is indexed into, or null when it lies inside a nested field
     * (kept out of the root document, as Elasticsearch does). An OPAQUE result names the geo_point-like
     * field the value belongs to: only its existence is recorded. Unmapped paths are mapped dynamically as
     * Elasticsearch does for JSON values (string: keyword, integer: long, decimal: float, true/false: boolean).
     */
    Field resolveForIndex(String path, char valueKind) {
        Field cached = indexCache.get(path);
        if (cached != null) {
            return cached;
        }
        Field f = resolveForIndexUncached(path, valueKind);
        if (f != null) {
            indexCache.put(path, f);
        }
        return f;
    }

    private Field resolveForIndexUncached(String path, char valueKind) {
        if (path.equals(EsIndex.FIELD_NAMES) || path.equals(EsIndex.ORDINAL) || path.equals(IGNORED)) {
            throw new DocumentException("field [" + path + "] is a metadata field and cannot be added inside a document");
        }
        for (String ancestor : ancestors(path)) {
            String type = exact.get(ancestor);
            if (type == null) {
                continue;
            }
            Kind kind = kindOf(type);
            if (kind == Kind.NESTED) {
                return null;
            }
            if (kind == Kind.FLATTENED) {
                return new Field(path, "keyword", Kind.KEYWORD, ancestor);
            }
            if (kind == Kind.OPAQUE) {
                return new Field(ancestor, type, Kind.OPAQUE, null);
            }
            if (isLeaf(kind)) {
                throw new DocumentException("failed to parse field [" + ancestor + "] of type [" + type
                    + "]: the document has an object there (sub-field [" + path + "])");
            }
        }
        String type = exact.get(path);
        boolean fromPattern = false;
        if (type == null) {
            type = patternType(path);
            fromPattern = type != null;
        }
        if (type != null) {
            Kind kind = kindOf(type);
            if (kind == Kind.OBJECT || kind == Kind.NESTED) {
                throw new DocumentException("object mapping for [" + path + "] tried to parse field [" + path
                    + "] as object, but found a concrete value");
            }
            Field f = new Field(path, type, kind, null);
            if (fromPattern) {
                discovered.put(path, f);
            }
            return f;
        }
        if (implicitObjects.contains(path)) {
            throw new DocumentException("object mapping for [" + path + "] tried to parse field [" + path
                + "] as object, but found a concrete value");
        }
        String open = openObjectType(path);
        if (open != null && !open.isEmpty()) {
            Field f = new Field(path, open, kindOf(open), null);
            discovered.put(path, f);
            return f;
        }
        String dynamicType;
        switch (valueKind) {
            case 'i':
                dynamicType = "long";
                break;
            case 'f':
                dynamicType = "float";
                break;
            case 'b':
                dynamicType = "boolean";
                break;
            default:
                dynamicType = "keyword";
        }
        Field f = new Field(path, dynamicType, kindOf(dynamicType), null);
        discovered.put(path, f);
        return f;
    }

    /** Fields matching a field-name pattern, or every searchable field for "*" (query_string's default field). */
    List<Field> expand(String pattern) {
        Pattern p = "*".equals(pattern) ? null : globPattern(pattern);
        List<Field> out = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        List<String> names = new ArrayList<>(exact.keySet());
        Collections.sort(names);
        for (String name : names) {
            if (p != null && !p.matcher(name).matches()) {
                continue;
            }
            Field f;
            try {
                f = resolveForQuery(name);
            } catch (UnknownFieldException e) {
                continue;
            }
            if (isLeaf(f.kind) && f.kind != Kind.OPAQUE && seen.add(name)) {
                out.add(f);
            }
        }
        for (Field f : discovered.values()) {
            if ((p == null || p.matcher(f.name).matches()) && f.kind != Kind.OPAQUE && f.flattenedRoot == null
                    && seen.add(f.name)) {
                out.add(f);
            }
        }
        return out;
    }

    /** True when some mapped or indexed field (or object) matches the pattern. */
    boolean anyFieldMatches(String pattern) {
        Pattern p = globPattern(pattern);
        for (String name : exact.keySet()) {
            if (p.matcher(name).matches()) {
                return true;
            }
        }
        for (String name : implicitObjects) {
            if (p.matcher(name).matches()) {
                return true;
            }
        }
        for (String name : discovered.keySet()) {
            if (p.matcher(name).matches()) {
                return true;
            }
        }
        return false;
    }

    /** Fields added by dynamic mapping or patterns while indexing, as "name\ttype". */
    public String[] discoveredFields() {
        List<String> out = new ArrayList<>();
        for (Field f : discovered.values()) {
            out.add(f.name + "\t" + f.type);
        }
        return out.toArray(new String[0]);
    }
}
