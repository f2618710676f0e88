"""The vocabulary of the synthetic world: real English words and sentence templates.

Actions are (base, gerund, third person) triples. Action forms, object words, fillers, contexts
and chatter are disjoint (tested), so every caption can be parsed back into its (action, object)
pair by the oracle text embedding (:meth:`nortonkit.synthetic.world.World.embed_text`, through
``_ACTION_LOOKUP`` and ``_OBJECT_LOOKUP``).
"""

from __future__ import annotations

from typing import Any


def _verbs(spec: str) -> tuple[tuple[str, str, str], ...]:
    return tuple(tuple(v.split("/")) for v in spec.split())  # type: ignore[misc]


_DOMAINS: dict[str, dict[str, Any]] = {
    "cooking": dict(
        share=0.5,
        actions=_verbs(
            "chop/chopping/chops slice/slicing/slices dice/dicing/dices mince/mincing/minces "
            "whisk/whisking/whisks stir/stirring/stirs pour/pouring/pours add/adding/adds "
            "mix/mixing/mixes fold/folding/folds knead/kneading/kneads bake/baking/bakes "
            "fry/frying/fries boil/boiling/boils simmer/simmering/simmers grate/grating/grates "
            "peel/peeling/peels season/seasoning/seasons sprinkle/sprinkling/sprinkles "
            "spread/spreading/spreads mash/mashing/mashes blend/blending/blends "
            "drain/draining/drains rinse/rinsing/rinses flip/flipping/flips heat/heating/heats "
            "melt/melting/melts crack/cracking/cracks marinate/marinating/marinates "
            "garnish/garnishing/garnishes toss/tossing/tosses squeeze/squeezing/squeezes "
            "coat/coating/coats grill/grilling/grills roast/roasting/roasts cut/cutting/cuts "
            "roll/rolling/rolls"
        ),
        objects=(
            "onion garlic eggs butter flour dough sugar milk tomato pepper chicken rice pasta "
            "cheese carrot potato sauce oil salt bread lettuce lemon batter cream water beef "
            "shrimp mushrooms spinach noodles broth ginger cucumber avocado bacon honey vinegar "
            "yogurt chocolate apple"
        ).split(),
        contexts=(
            "in a bowl", "in the pan", "with a knife", "until golden", "for five minutes",
            "into small pieces", "on a wooden board", "in the pot", "with a spoon",
            "until smooth", "over the top", "in the oven", "on the stove", "a little bit",
        ),
        task_verbs=("make", "cook", "prepare"),
        task_mods=("easy", "spicy", "classic", "homemade", "quick", "healthy", "vegan", "simple"),
        task_things=(
            "pancakes", "omelette", "fried rice", "tomato soup", "banana bread", "lasagna",
            "pad thai", "guacamole", "apple pie", "chocolate cake", "caesar salad", "beef stew",
            "garlic shrimp", "chicken curry", "french toast", "pizza", "burritos", "ramen",
            "meatballs", "brownies", "cookies", "lemonade", "hummus", "risotto", "tacos",
            "dumplings", "chili", "muffins", "noodle soup", "potato salad",
        ),
    ),
    "diy": dict(
        share=0.2,
        actions=_verbs(
            "drill/drilling/drills screw/screwing/screws sand/sanding/sands "
            "paint/painting/paints glue/gluing/glues measure/measuring/measures "
            "mark/marking/marks saw/sawing/saws hammer/hammering/hammers "
            "attach/attaching/attaches remove/removing/removes tighten/tightening/tightens "
            "loosen/loosening/loosens clean/cleaning/cleans wipe/wiping/wipes "
            "install/installing/installs level/leveling/levels seal/sealing/seals "
            "clamp/clamping/clamps unscrew/unscrewing/unscrews polish/polishing/polishes "
            "replace/replacing/replaces"
        ),
        objects=(
            "shelf tire pipe wood nail hinge bolt frame tile drawer door faucet cable bracket "
            "panel plank handle wall fence chain"
        ).split(),
        contexts=(
            "on both sides", "with a screwdriver", "along the edge", "very carefully",
            "from the top", "into place", "at the corner", "with some pliers", "until it is tight",
            "a few times",
        ),
        task_verbs=("fix", "build", "repair", "assemble", "mount"),
        task_mods=("old", "simple", "small", "new", "wooden", "broken"),
        task_things=(
            "leaky faucet", "bookshelf", "ceiling fan", "bike chain", "garden fence",
            "kitchen cabinet", "picture frame", "bench", "coffee table", "tool box", "closet door",
            "flat tire", "window blind", "desk",
        ),
    ),
    "crafts": dict(
        share=0.15,
        actions=_verbs(
            "sew/sewing/sews stitch/stitching/stitches knit/knitting/knits "
            "thread/threading/threads tie/tying/ties wrap/wrapping/wraps draw/drawing/draws "
            "trace/tracing/traces pin/pinning/pins iron/ironing/irons braid/braiding/braids "
            "fold/folding/folds cut/cutting/cuts glue/gluing/glues paint/painting/paints"
        ),
        objects=(
            "paper fabric button ribbon yarn needle card bead string felt pattern sleeve hem "
            "collar envelope"
        ).split(),
        contexts=(
            "in half", "along the line", "on the table", "at the top", "around the edge",
            "with scissors", "nice and neat", "like so",
        ),
        task_verbs=("make", "create", "design"),
        task_mods=("cute", "simple", "colorful", "tiny", "festive"),
        task_things=(
            "greeting card", "friendship bracelet", "tote bag", "pillow cover", "scarf",
            "paper lantern", "origami crane", "quilt", "bookmark", "wall hanging", "gift box",
            "ornament",
        ),
    ),
    "garden": dict(
        share=0.15,
        actions=_verbs(
            "plant/planting/plants dig/digging/digs prune/pruning/prunes trim/trimming/trims "
            "rake/raking/rakes spray/spraying/sprays scrub/scrubbing/scrubs mow/mowing/mows "
            "repot/repotting/repots fertilize/fertilizing/fertilizes mulch/mulching/mulches "
            "sweep/sweeping/sweeps vacuum/vacuuming/vacuums dust/dusting/dusts mop/mopping/mops "
            "rinse/rinsing/rinses wipe/wiping/wipes clean/cleaning/cleans"
        ),
        objects=(
            "soil seeds roots leaves hedge lawn sink floor window carpet shower roses seedlings "
            "bushes gutter grass bathtub counter stairs"
        ).split(),
        contexts=(
            "in the backyard", "around the base", "every few days", "in the morning",
            "with a hose", "from left to right", "all the way", "really well",
        ),
        task_verbs=("grow", "start", "refresh", "deep clean", "care for"),
        task_mods=("small", "new", "messy", "shady", "sunny"),
        task_things=(
            "vegetable garden", "rose bush", "herb garden", "bathroom", "kitchen", "compost bin",
            "raised bed", "succulents", "patio", "balcony garden",
        ),
    ),
}

_FILLERS = (
    "um", "uh", "so", "like", "you know", "basically", "really", "just", "okay", "alright",
    "actually", "kind of", "pretty much", "very", "well", "right", "now", "here", "guys",
)
_STEP_TEMPLATES = (
    "now we {a} the {o}", "you want to {a} the {o}", "go ahead and {a} the {o}",
    "i'm going to {a} the {o}", "next {a} the {o}", "then you {a} the {o}", "just {a} the {o}",
    "we're gonna {a} the {o}", "let's {a} the {o}", "you need to {a} the {o}",
    "i like to {a} the {o}", "what you do is {a} the {o}", "{a} the {o}",
    "make sure you {a} the {o}",
)
_CHATTER = (
    "hi everyone welcome back to my channel", "don't forget to subscribe",
    "thanks so much for watching", "this is my grandmother's favorite",
    "i hope you guys enjoy this video", "it's a tense moment", "let me know in the comments below",
    "my kids absolutely love this", "that's it for today", "i'll see you next time",
    "this is so easy", "it smells amazing in here", "today is a beautiful day",
    "my camera is a little shaky", "please like this video", "i learned this from my dad",
    "we'll talk about that later", "sorry about the noise", "this is the fun part",
    "okay so where was i", "i've been doing this for years", "my phone is ringing",
    "check out my other videos", "it's been a long week", "that looks really good",
    "let's take a quick break", "you can find the link below", "i know it's a lot",
    "bear with me here", "as you can see it's pretty simple",
)
_MENTION_TEMPLATES = (
    "i got this {o} at the store", "the {o} is really important here",
    "you can use any kind of {o}", "i love {o}", "this {o} was on sale",
    "my {o} is a little old", "some people don't like {o}", "make sure your {o} is fresh",
)
_TASK_MENTION = ("today i'm going to show you how to {t}", "this is how i {t}")
_MSRVTT_TEMPLATES = (
    "a person is {g} the {o}", "someone {t} the {o}", "a man {t} some {o}",
    "a woman is {g} {o}", "a video of someone {g} the {o}", "a person {t} the {o} on camera",
    "a guy is {g} some {o}", "a lady {t} the {o}", "someone is {g} the {o} in a video",
    "a clip of a person {g} {o}", "a tutorial on {g} the {o}", "hands {g} the {o}",
)
# stop words stripped from youcook_val.pkl captions (the released pickle stores them so)
_STOPWORDS = frozenset(
    "the a an in on into with of to until for and over it is some at from by".split()
)
_BACKGROUND_KINDS = ("intro", "talking", "broll", "outro")


# lookups from every written form to the base word (forms are shared across domains)
_ACTION_LOOKUP: dict[str, str] = {}
_OBJECT_LOOKUP: dict[str, str] = {}
for _spec in _DOMAINS.values():
    for _forms in _spec["actions"]:
        for _f in _forms:
            _ACTION_LOOKUP[_f] = _forms[0]
    for _o in _spec["objects"]:
        _OBJECT_LOOKUP[_o] = _o
