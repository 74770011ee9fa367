/*
 * detpack: an in-memory Lucene index of ECS documents, indexed the way Elasticsearch indexes them for a
 * given mapping, searched with EsLikeQueryParser.
 *
 * Written for detpack from Elasticsearch's documented mapping behaviour (links in detpack/engines/lucene.py).
 * The Python side flattens each document into (dotted path, typed value) pairs: one pair per array element,
 * so a multi-valued field matches when any value does.
 */
package detpack.lucene;

import detpack.lucene.EsMapping.DocumentException;
import detpack.lucene.EsMapping.Field;
import detpack.lucene.EsMapping.Kind;
import java.io.IOException;
import java.math.BigDecimal;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.DelegatingAnalyzerWrapper;
import org.apache.lucene.analysis.LowerCaseFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.core.KeywordAnalyzer;
import org.apache.lucene.analysis.standard.StandardTokenizer;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.DoublePoint;
import org.apache.lucene.document.FloatPoint;
import org.apache.lucene.document.InetAddressPoint;
import org.apache.lucene.document.LongPoint;
import org.apache.lucene.document.NumericDocValuesField;
import org.apache.lucene.document.StringField;
import org.apache.lucene.document.TextField;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.DocValues;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.NumericDocValues;
import org.apache.lucene.queryparser.classic.ParseException;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.ScoreMode;
import org.apache.lucene.search.SimpleCollector;
import org.apache.lucene.store.ByteBuffersDirectory;

public final class EsIndex {

    /** Where each document records the paths it has (Elasticsearch's _field_names), for exists queries. */
    static final String FIELD_NAMES = "_field_names";
    /** The document's position in the caller's list. */
    static final String ORDINAL = "_detpack_ordinal";

    /**
     * Elasticsearch's `standard` analyzer: standard tokenizer (max token length 255) and lower-casing, no stop
     * words; position_increment_gap 100 between the values of an array, as text fields have by default.
     */
    static final class StandardAnalyzer extends Analyzer {
        @Override
        protected TokenStreamComponents createComponents(String fieldName) {
            Tokenizer tokenizer = new StandardTokenizer();
            return new TokenStreamComponents(tokenizer, new LowerCaseFilter(tokenizer));
        }

        @Override
        protected TokenStream normalize(String fieldName, TokenStream in) {
            return new LowerCaseFilter(in);
        }

        @Override
        public int getPositionIncrementGap(String fieldName) {
            return 100;
        }
    }

    /** The standard analyzer for text fields, the keyword analyzer (no change) for every other field. */
    static final class MappingAnalyzer extends DelegatingAnalyzerWrapper {
        private final EsMapping mapping;
        private final Analyzer text = new StandardAnalyzer();
        private final Analyzer keyword = new KeywordAnalyzer();

        MappingAnalyzer(EsMapping mapping) {
            super(PER_FIELD_REUSE_STRATEGY);
            this.mapping = mapping;
        }

        @Override
        protected Analyzer getWrappedAnalyzer(String fieldName) {
            return mapping.isText(fieldName) ? text : keyword;
        }
    }

    private final EsMapping mapping;
    private final Analyzer analyzer;
    private final IndexSearcher searcher;
    private final int size;
    private final boolean ignoreMalformed;
    private final List<String> ignored = new ArrayList<>();

    /**
     * @param names    mapped field names (dotted; '*' globs allowed)
     * @param types    their Elasticsearch types
     * @param paths    dotted path of every value of every document, documents one after the other
     * @param values   each value as one character of JSON kind (s string, i integer, f decimal, b boolean)
     *                 followed by its text
     * @param docEnds  for each document, the index in paths/values just after its last value
     * @param ignoreMalformed  index.mapping.ignore_malformed: a value a numeric, boolean, date or ip field cannot
     *                 parse is left out (and listed in _ignored) instead of rejecting the document
     */
    public EsIndex(String[] names, String[] types, String[] paths, String[] values, int[] docEnds,
                   boolean ignoreMalformed) throws IOException {
        this.ignoreMalformed = ignoreMalformed;
        this.mapping = new EsMapping(names, types);
        this.analyzer = new MappingAnalyzer(mapping);
        this.size = docEnds.length;
        ByteBuffersDirectory directory = new ByteBuffersDirectory();
        IndexWriterConfig config = new IndexWriterConfig(analyzer);
        config.setRAMBufferSizeMB(256);
        try (IndexWriter writer = new IndexWriter(directory, config)) {
            int start = 0;
            for (int ordinal = 0; ordinal < docEnds.length; ordinal++) {
                writer.addDocument(document(ordinal, paths, values, start, docEnds[ordinal]));
                start = docEnds[ordinal];
            }
            writer.forceMerge(1);
        }
        this.searcher = new IndexSearcher(DirectoryReader.open(directory));
        this.searcher.setQueryCache(null);
    }

    private Document document(int ordinal, String[] paths, String[] values, int start, int end) {
        Document doc = new Document();
        doc.add(new NumericDocValuesField(ORDINAL, ordinal));
        Set<String> present = new HashSet<>();
        for (int i = start; i < end; i++) {
            String path = paths[i];
            char kind = values[i].charAt(0);
            String text = values[i].substring(1);
            Field f;
            try {
                f = mapping.resolveForIndex(path, kind);
            } catch (DocumentException e) {
                throw new DocumentException("document " + ordinal + ": " + e.getMessage());
            }
            if (f == null) {
                continue;
            }
            if (f.kind == Kind.OPAQUE) {
                addPresent(present, f.name, true);
                continue;
            }
            try {
                if (f.isKeyedFlattened()) {
                    // a flattened field indexes every leaf as a keyword: the value, and "key\0value" keyed
                    doc.add(new StringField(f.flattenedRoot, text, org.apache.lucene.document.Field.Store.NO));
                    doc.add(new StringField(f.keyedField(), f.keyed(text), org.apache.lucene.document.Field.Store.NO));
                    present.add(f.name);
                    addPresent(present, f.flattenedRoot, true);
                    continue;
                }
                if (!addValue(doc, f, kind, text)) {
                    ignore(doc, ordinal, f.name, present);
                    continue;
                }
                addPresent(present, f.name, true);
                for (Field sub : mapping.multiFieldsOf(f.name)) {
                    if (addValue(doc, sub, kind, text)) {
                        present.add(sub.name);
                    } else {
                        ignore(doc, ordinal, sub.name, present);
                    }
                }
            } catch (DocumentException e) {
                throw new DocumentException("document " + ordinal + ": " + e.getMessage());
            }
        }
        for (String name : present) {
            doc.add(new StringField(FIELD_NAMES, name, org.apache.lucene.document.Field.Store.NO));
        }
        return doc;
    }

    private void ignore(Document doc, int ordinal, String field, Set<String> present) {
        present.add(EsMapping.IGNORED);
        String entry = ordinal + "\t" + field;
        if (ignored.isEmpty() || !ignored.get(ignored.size() - 1).equals(entry)) {
            ignored.add(entry);
            doc.add(new StringField(EsMapping.IGNORED, field, org.apache.lucene.document.Field.Store.NO));
        }
    }

    private static void addPresent(Set<String> present, String name, boolean withAncestors) {
        present.add(name);
        if (withAncestors) {
            present.addAll(EsMapping.ancestors(name));
        }
    }

    private boolean malformed(Field f, char kind, String text, String why) {
        if (ignoreMalformed) {
            return false;
        }
        throw badValue(f, kind, text, why);
    }

    private static DocumentException badValue(Field f, char kind, String text, String why) {
        String shown = kind == 's' ? "\"" + text + "\"" : text;
        return new DocumentException("failed to parse field [" + f.name + "] of type [" + f.type + "]: value "
            + shown + (why.isEmpty() ? "" : " (" + why + ")"));
    }

    /**
     * Indexes one value; false when it is malformed for its numeric, boolean, date or ip field and malformed
     * values are ignored (otherwise DocumentException, as Elasticsearch rejects the document).
     */
    private boolean addValue(Document doc, Field f, char kind, String text) {
        org.apache.lucene.document.Field.Store no = org.apache.lucene.document.Field.Store.NO;
        switch (f.kind) {
            case KEYWORD:
            case FLATTENED:
                doc.add(new StringField(f.name, text, no));
                return true;
            case TEXT:
                doc.add(new TextField(f.name, text, no));
                return true;
            case LONG: {
                if (kind == 'b') {
                    return malformed(f, kind, text, "a boolean is not a number");
                }
                BigDecimal v;
                try {
                    v = new BigDecimal(text);
                } catch (NumberFormatException e) {
                    return malformed(f, kind, text, "not a number");
                }
                // coerce: decimals are truncated for integer types
                BigDecimal truncated = v.setScale(0, java.math.RoundingMode.DOWN);
                long min = Long.MIN_VALUE;
                long max = Long.MAX_VALUE;
                switch (f.type) {
                    case "byte":
                        min = Byte.MIN_VALUE;
                        max = Byte.MAX_VALUE;
                        break;
                    case "short":
                        min = Short.MIN_VALUE;
                        max = Short.MAX_VALUE;
                        break;
                    case "integer":
                        min = Integer.MIN_VALUE;
                        max = Integer.MAX_VALUE;
                        break;
                    case "unsigned_long":
                        min = 0;
                        break;
                    default:
                        break;
                }
                if (truncated.compareTo(BigDecimal.valueOf(min)) < 0 || truncated.compareTo(BigDecimal.valueOf(max)) > 0) {
                    return malformed(f, kind, text, "out of range for " + f.type);
                }
                doc.add(new LongPoint(f.name, truncated.longValueExact()));
                return true;
            }
            case FLOAT:
            case DOUBLE: {
                if (kind == 'b') {
                    return malformed(f, kind, text, "a boolean is not a number");
                }
                double v;
                try {
                    v = new BigDecimal(text.trim()).doubleValue();
                } catch (NumberFormatException e) {
                    return malformed(f, kind, text, "not a number");
                }
                if (f.kind == Kind.FLOAT) {
                    doc.add(new FloatPoint(f.name, (float) v));
                } else {
                    doc.add(new DoublePoint(f.name, v));
                }
                return true;
            }
            case IP: {
                InetAddress address;
                try {
                    address = kind == 's' ? EsLikeQueryParser.parseIp(text) : null;
                } catch (EsMapping.QueryException e) {
                    address = null;
                }
                if (address == null) {
                    return malformed(f, kind, text, "not an IP string literal");
                }
                doc.add(new InetAddressPoint(f.name, address));
                return true;
            }
            case BOOLEAN: {
                if (kind == 'b' || (kind == 's' && (text.equals("true") || text.equals("false") || text.isEmpty()))) {
                    doc.add(new StringField(f.name, text.isEmpty() ? "false" : text, no));
                    return true;
                }
                return malformed(f, kind, text, "expected true or false");
            }
            case DATE: {
                long millis;
                try {
                    if (kind == 'i') {
                        millis = Long.parseLong(text);
                    } else if (kind == 's') {
                        millis = EsLikeQueryParser.parseDate(text)[0];
                    } else {
                        return malformed(f, kind, text, "not a date");
                    }
                } catch (EsMapping.QueryException | NumberFormatException e) {
                    return malformed(f, kind, text, "not a date in strict_date_optional_time||epoch_millis");
                }
                doc.add(new LongPoint(f.name, millis));
                return true;
            }
            default:
                throw badValue(f, kind, text, "cannot index a value into a field of type " + f.type);
        }
    }

    /** Documents (by position in the indexed list) matching an Elasticsearch query_string query. */
    public int[] search(String queryString) throws ParseException, IOException {
        Query query = parse(queryString);
        List<Integer> hits = new ArrayList<>();
        searcher.search(query, new SimpleCollector() {
            private NumericDocValues ordinals;

            @Override
            protected void doSetNextReader(LeafReaderContext context) throws IOException {
                ordinals = DocValues.getNumeric(context.reader(), ORDINAL);
            }

            @Override
            public void collect(int doc) throws IOException {
                if (!ordinals.advanceExact(doc)) {
                    throw new IllegalStateException("document without ordinal");
                }
                hits.add((int) ordinals.longValue());
            }

            @Override
            public ScoreMode scoreMode() {
                return ScoreMode.COMPLETE_NO_SCORES;
            }
        });
        int[] out = new int[hits.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = hits.get(i);
        }
        Arrays.sort(out);
        return out;
    }

    /** The Lucene query a query string becomes (for error messages and debugging). */
    public Query parse(String queryString) throws ParseException {
        EsLikeQueryParser parser = new EsLikeQueryParser(mapping, analyzer);
        return EsLikeQueryParser.fixNegative(parser.parse(queryString));
    }

    public int size() {
        return size;
    }

    /** The malformed values left out, as "document position\tfield" (Elasticsearch's _ignored). */
    public String[] ignored() {
        return ignored.toArray(new String[0]);
    }

    public String[] discoveredFields() {
        return mapping.discoveredFields();
    }
}
