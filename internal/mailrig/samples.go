package mailrig

// person is a message participant.
type person struct {
	Name string
	Addr string
}

// outsiders correspond with the rig users; their domains are reserved
// example domains, so no address can reach a real mailbox.
var outsiders = []person{
	{"José Müller", "jose.mueller@example.com"},
	{"Zoë Ångström", "zoe@example.org"},
	{"Влад Петров", "vlad.petrov@example.net"},
	{"山田 太郎", "taro.yamada@example.net"},
	{"François Dupont", "f.dupont@example.org"},
	{"Priya Natarajan", "priya@example.com"},
	{"O'Brien, Siobhán", "siobhan@example.com"},
	{"", "noreply@example.net"},
}

// newsletterSender sends the large HTML newsletters.
var newsletterSender = person{"Example Weekly", "news@example.com"}

// subjects are thread topics: ASCII, Latin-1 representable, and text that
// needs UTF-8.
var subjects = []string{
	"Quarterly report",
	"Lunch on Friday?",
	"Invoice 2024-0417",
	"Server maintenance window",
	"Design review notes",
	"Your flight itinerary",
	"Budget draft v3",
	"Weekend hiking trip",
	"Code review: auth refactor",
	"Welcome to the team",
	"Meeting minutes, 12 March",
	"Réunion de lundi",
	"Übersicht Projekt Köln",
	"¿Café mañana?",
	"Prüfbericht für März",
	"Smörgåsbord planning",
	"Отчёт за месяц",
	"会議の議事録",
	"🎉 Launch party!",
	"Résumé – naïve café ✓",
	"Ελληνικά: δοκιμή",
}

// words feed the generated English prose.
var words = []string{
	"the", "project", "meeting", "schedule", "report", "team", "budget",
	"review", "deadline", "customer", "server", "release", "draft", "plan",
	"update", "numbers", "quarter", "design", "feedback", "issue", "invoice",
	"contract", "travel", "office", "agenda", "proposal", "summary", "notes",
	"please", "check", "attached", "tomorrow", "next", "week", "we", "should",
	"could", "will", "need", "to", "and", "for", "with", "about", "after",
	"before", "again", "quickly", "carefully", "final", "new", "old", "shared",
}

// charsetSample is a paragraph and its bytes in one charset.
type charsetSample struct {
	Charset string
	Text    string // UTF-8
	Raw     string // encoded in Charset
}

// charsetSamples are the non-UTF-8 body charsets; Raw was produced with
// iconv and is verified against Text by the tests.
var charsetSamples = []charsetSample{
	{"ISO-8859-1", "Grüße aus München! Das Café öffnet um 9 Uhr. ¿Qué tal, señor? Déjà vu à Paris, Ærø og Åland.", "Gr\xfc\xdfe aus M\xfcnchen! Das Caf\xe9 \xf6ffnet um 9 Uhr. \xbfQu\xe9 tal, se\xf1or? D\xe9j\xe0 vu \xe0 Paris, \xc6r\xf8 og \xc5land."},
	{"windows-1252", "Preis: 42 € – „Anführungszeichen“ und “smart quotes” … Œuvre™, Šárka — ‘fin’.", "Preis: 42 \x80 \x96 \x84Anf\xfchrungszeichen\x93 und \x93smart quotes\x94 \x85 \x8cuvre\x99, \x8a\xe1rka \x97 \x91fin\x92."},
	{"KOI8-R", "Привет! Это тестовое письмо в кодировке KOI8-R. Съешь же ещё этих мягких французских булок, да выпей чаю.", "\xf0\xd2\xc9\xd7\xc5\xd4! \xfc\xd4\xcf \xd4\xc5\xd3\xd4\xcf\xd7\xcf\xc5 \xd0\xc9\xd3\xd8\xcd\xcf \xd7 \xcb\xcf\xc4\xc9\xd2\xcf\xd7\xcb\xc5 KOI8-R. \xf3\xdf\xc5\xdb\xd8 \xd6\xc5 \xc5\xdd\xa3 \xdc\xd4\xc9\xc8 \xcd\xd1\xc7\xcb\xc9\xc8 \xc6\xd2\xc1\xce\xc3\xd5\xda\xd3\xcb\xc9\xc8 \xc2\xd5\xcc\xcf\xcb, \xc4\xc1 \xd7\xd9\xd0\xc5\xca \xde\xc1\xc0."},
	{"ISO-2022-JP", "こんにちは。これはテスト用のメールです。会議の資料を確認してください。よろしくお願いします。", "\x1b$B$3$s$K$A$O!#$3$l$O%F%9%HMQ$N%a!<%k$G$9!#2q5D$N;qNA$r3NG'$7$F$/$@$5$$!#$h$m$7$/$*4j$$$7$^$9!#\x1b(B"},
	{"Shift_JIS", "お疲れ様です。来週の打ち合わせの件でご連絡します。添付の資料をご確認ください。", "\x82\xa8\x94\xe6\x82\xea\x97l\x82\xc5\x82\xb7\x81B\x97\x88\x8fT\x82\xcc\x91\xc5\x82\xbf\x8d\x87\x82\xed\x82\xb9\x82\xcc\x8c\x8f\x82\xc5\x82\xb2\x98A\x97\x8d\x82\xb5\x82\xdc\x82\xb7\x81B\x93Y\x95t\x82\xcc\x8e\x91\x97\xbf\x82\xf0\x82\xb2\x8am\x94F\x82\xad\x82\xbe\x82\xb3\x82\xa2\x81B"},
}

// utf8Extras are UTF-8 paragraphs beyond what the samples cover.
var utf8Extras = []string{
	"Ελληνικά, ქართული, 中文, עברית and emoji 🎉🚀✅ in one line.",
	"Naïve café résumé: “quotes”, ‘apostrophes’ and the € sign.",
}
