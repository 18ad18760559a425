#!/usr/bin/env python3
"""Golden values for METEOR and the Porter stemmer from nltk, with WordNet 3.0 read from the
Debian wordnet-base files (/usr/share/wordnet).  Requirements: nltk (tested with 3.10.4).
Writes Tests/RewardsTests/Fixtures/meteor_golden.json (deterministic)."""
import json, os, random
import shutil, tempfile
from nltk.corpus.reader.wordnet import WordNetCorpusReader
from nltk.stem.porter import PorterStemmer
from nltk.translate.meteor_score import meteor_score

WN_DIR = "/usr/share/wordnet"
# nltk wants a `lexnames` file (absent from Debian's wordnet-base; it only names lexicographer files,
# which METEOR never uses) and reads only below its data roots: link the files into a temp root.
_LEX = ("adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
        "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
        "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
        "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
        "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
        "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl").split()
_ROOT = tempfile.mkdtemp()
os.environ["NLTK_DATA"] = _ROOT
_WN = os.path.join(_ROOT, "wordnet")
os.mkdir(_WN)
for name in os.listdir(WN_DIR):
    if os.path.isfile(os.path.join(WN_DIR, name)):
        shutil.copy(os.path.join(WN_DIR, name), os.path.join(_WN, name))
with open(os.path.join(_WN, "lexnames"), "w") as f:
    for i, name in enumerate(_LEX):
        f.write("%02d\t%s\t%d\n" % (i, name, {"adj": 3, "adv": 4, "noun": 1, "verb": 2}[name.split(".")[0]]))

class _EmptyWordNet:
    def synsets(self, word):
        return []

# The version mapping (for other WordNet releases) would need nltk's own wordnet download; the
# Debian files are WordNet 3.0, so it is not needed.
WordNetCorpusReader.map_wn = lambda self, version="wordnet": None
wn = WordNetCorpusReader(_WN, None)
stemmer = PorterStemmer()
rng = random.Random(3)

# Stemmer: a deterministic sample of WordNet index words plus hand-picked tricky forms.
words = set()
for pos in ["noun", "verb", "adj", "adv"]:
    with open(os.path.join(WN_DIR, "index." + pos)) as f:
        lemmas = [l.split()[0] for l in f if not l.startswith(" ")]
    words.update(w for w in rng.sample(lemmas, 400) if "_" not in w)
words.update("""caresses flies dies mules denied died agreed owned humbled sized meeting stating siezing itemization
sensational traditional reference colonizer plotted skies dying lying tying news innings outings cannings howe
proceed exceed succeed happy enjoy sky spy generalization oscillators hopping hoping falling filing conflated
troubled sized hissing fizzed failing filed feudalism decisiveness hopefulness callousness formaliti
sensitiviti sensibiliti triplicate formative formalize electriciti electrical hopeful goodness revival
allowance inference airliner gyroscopic adjustable defensible irritant replacement adjustment dependent
adoption homologou communism activate angulariti homologous effective bowdlerize probate rate cease controll
roll analogi geology theology archaeology fully gently bly""".split())
stems = {w: stemmer.stem(w) for w in sorted(words)}

sentences = [
    ("It is a guide to action which ensures that the military always obeys the commands of the party",
     ["It is a guide to action that ensures that the military will forever heed Party commands",
      "It is the guiding principle which guarantees the military forces always being under the command of the Party"]),
    ("a black cat sitting on a wooden table", ["a dark cat sits on the table made of wood"]),
    ("the red car is parked near the big building", ["a crimson automobile parked beside a large building"]),
    ("a man riding a horse on the beach", ["a person rides a horse along the shore", "man on horseback at the seaside"]),
    ("two dogs are running in the grass", ["two puppies run through the lawn"]),
    ("the quick brown fox", ["the fast brown fox jumps"]),
    ("non matching hypothesis", ["this is a cat"]),
    ("", ["a cat"]),
    ("the the the", ["the cat"]),
    ("A small white boat floats on the calm lake", ["a little white ship floating on a still lake"]),
    ("The woman is holding an umbrella in the rain", ["a lady holds an umbrella while it rains"]),
    ("children playing football in the park", ["kids play soccer at the park", "a group of children playing"]),
]
rng2 = random.Random(8)
vocab = "a the cat cats dog dogs running runs ran big large small little red crimson car automobile table tables wooden wood sits sitting on in near beside building buildings man person men woman lady".split()
for _ in range(40):
    hyp = " ".join(rng2.choice(vocab) for _ in range(rng2.randint(1, 12)))
    refs = [" ".join(rng2.choice(vocab) for _ in range(rng2.randint(1, 12))) for _ in range(rng2.randint(1, 3))]
    sentences.append((hyp, refs))

cases = []
for hyp, refs in sentences:
    h = hyp.lower().split()
    r = [x.lower().split() for x in refs]
    cases.append({"hypothesis": hyp, "references": refs,
                  "meteor_wordnet": meteor_score(r, h, wordnet=wn) if h else 0.0,
                  "meteor_no_wordnet": meteor_score(r, h, wordnet=_EmptyWordNet()) if h else 0.0})

synonyms = {}
for w in ["car", "dogs", "running", "large", "quickly", "better", "geese", "wooden", "ran", "lady"]:
    synonyms[w] = sorted({l.name() for s in wn.synsets(w) for l in s.lemmas()})

out = os.path.join(os.path.dirname(__file__), "../../Tests/RewardsTests/Fixtures/meteor_golden.json")
with open(out, "w") as f:
    json.dump({"stems": stems, "cases": cases, "synonyms": synonyms}, f, indent=0, sort_keys=True)
