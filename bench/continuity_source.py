"""The held-out continuity set, as written by a reader: canon entries from six Austen novels, and the
paragraphs (by number in bench/continuity_set.py's cut of each novel) either left as published
(clean) or with one sentence added or changed so that it contradicts one entry (planted). The
procedure is bench/notes/continuity_set.md; bench/continuity_set.py --build turns this into
bench/data/continuity_set.json. Written before any rule of the deterministic pass was changed."""

from __future__ import annotations

BOOKS: dict = {}
ZH: dict = {}


def E(kind, name, aliases, status, facts):
    return {"kind": kind, "name": name, "aliases": list(aliases), "status": status, "facts": list(facts)}


def P(para, kind, entry, *, append=None, replace=None):
    """A planted contradiction: ``append`` a sentence to the paragraph, or ``replace`` (old, new) in it."""
    return {"para": para, "kind": kind, "entry": entry, "append": append, "replace": list(replace) if replace else None}


def C(*paras):
    """Clean paragraphs, as published."""
    return [{"para": p, "kind": None} for p in paras]


def Z(para, text, kind=None, entry=None, *, planted=None):
    """A Chinese paragraph retelling English paragraph ``para``; ``planted`` is the sentence appended."""
    return {"para": para, "text": text, "kind": kind, "entry": entry, "append": planted}


# --- Sense and Sensibility (dev) ---------------------------------------------------------------
BOOKS["sensesensibility"] = dict(split="dev", canon=[
    E("character", "Henry Dashwood", ["Mr. Henry Dashwood"], "dead",
      ["Father of Elinor, Marianne and Margaret; he died a year after inheriting Norland."]),
    E("character", "Old Mr. Dashwood", ["the old gentleman"], "dead",
      ["Henry Dashwood's uncle, the former owner of Norland."]),
    E("character", "John Dashwood", ["Mr. John Dashwood", "Mr. Dashwood"], "alive",
      ["Henry Dashwood's son by his first marriage; now owner of Norland."]),
    E("character", "Elinor Dashwood", ["Elinor", "Miss Dashwood"], "alive",
      ["The eldest daughter, nineteen years old.", "A delicate complexion and regular features."]),
    E("character", "Marianne Dashwood", ["Marianne"], "alive",
      ["Seventeen years old.", "Her skin is very brown and her eyes are very dark."]),
    E("character", "Margaret Dashwood", ["Margaret"], "alive", ["The youngest sister, thirteen years old."]),
    E("character", "Colonel Brandon", ["Brandon", "the Colonel"], "alive",
      ["A colonel, past thirty-five, grave and silent.", "Owner of Delaford."]),
    E("character", "John Willoughby", ["Willoughby"], "alive",
      ["Heir to Allenham; owns Combe Magna in Somersetshire."]),
    E("character", "Edward Ferrars", ["Edward", "Mr. Ferrars"], "alive",
      ["Fanny Dashwood's elder brother.", "He wears a ring set with a plait of Lucy Steele's hair."]),
    E("character", "Lucy Steele", ["Lucy", "Miss Lucy Steele"], "alive",
      ["Two or three and twenty, pretty, with a sharp quick eye."]),
    E("character", "Mrs. Jennings", [], "alive", ["A widow; mother of Lady Middleton and Mrs. Palmer."]),
    E("character", "Mr. Jennings", [], "dead", ["Mrs. Jennings's late husband, who made his fortune in trade."]),
    E("character", "Sir John Middleton", ["Sir John"], "alive", ["A baronet, the owner of Barton Park."]),
    E("character", "Queen Mab", [], "kept by Willoughby",
      ["A horse, Willoughby's gift to Marianne, which she could not accept."]),
    E("object", "Edward's miniature", ["the miniature of Edward"], "held by Lucy Steele",
      ["A small portrait of Edward Ferrars that Lucy carries."]),
    E("object", "Marianne's pianoforte", [], "in Barton Cottage", ["Unpacked in the cottage parlour."]),
    E("place", "Barton Cottage", ["the cottage"], "", ["Mrs. Dashwood's house in Devonshire."]),
    E("place", "Norland Park", ["Norland"], "", ["The Dashwood estate in Sussex."]),
    E("place", "Delaford", [], "", ["Colonel Brandon's house in Dorsetshire."]),
    E("event", "Edward's engagement to Lucy", ["engaged to Lucy", "Edward's engagement"], "secret",
      ["Known only to Lucy Steele, Anne Steele, Edward Ferrars and Elinor Dashwood."]),
    E("event", "Willoughby's seduction of Eliza Williams", ["Eliza Williams"], "secret",
      ["Known only to Colonel Brandon and Mrs. Smith."]),
], items=[
    # status
    P(62, "status", "Henry Dashwood", append="Mr. Henry Dashwood, who had come in quietly from the garden, added his own warm word to the invitation, and pressed Edward's hand as he did so."),
    P(155, "status", "Mr. Jennings", append="Mr. Jennings, red in the face and jovial as ever, kept the whole table laughing until the candles were brought."),
    P(102, "status", "Henry Dashwood", append="Henry Dashwood, leaning on his stick at the cottage gate, called after his daughters to mind the weather and be home by noon."),
    P(75, "status", "Old Mr. Dashwood", append="A basket of game had come that morning from old Mr. Dashwood at Norland, with a note in his own shaky hand wishing them joy of the new house."),
    # attributes
    P(118, "attribute", "Marianne Dashwood", replace=("in her eyes, which were very dark,", "in her eyes, which were of the palest blue,")),
    P(12, "attribute", "Margaret Dashwood", replace=("at thirteen,", "at nineteen,")),
    P(83, "attribute", "Colonel Brandon", replace=("the gravity of Colonel Brandon,", "the gravity of Colonel Brandon, who could not be more than four-and-twenty,")),
    P(150, "attribute", "Queen Mab", replace=("Queen Mab shall receive you.", "Queen Mab shall receive you, and wag her little tail at you as fondly as any spaniel.")),
    P(164, "attribute", "Colonel Brandon", append="The Colonel, who had never in his life held any commission but a clergyman's, was soon back at the table as if nothing had happened."),
    # possession
    P(395, "possession", "Edward's miniature", replace=("Yes, I have one other comfort in his picture, but poor Edward has not even THAT.", "I had one other comfort once in his picture, but my sister Anne has it now and will not give it me back, and poor Edward has not even THAT.")),
    P(26, "possession", "Edward Ferrars", append="He turned the ring with the plait of hair round and round on his own finger as he spoke, as he had done ever since Edward made him a present of it."),
    P(207, "possession", "Queen Mab", append="Queen Mab, Elinor noticed, was tied at the cottage gate; Marianne had her at last, and nobody now could say the horse was anybody's but hers."),
    # location
    P(71, "location", "Marianne's pianoforte", replace=("Marianne's pianoforte was unpacked and properly disposed of;", "Marianne's pianoforte, to her lasting grief, had been left standing in the drawing-room at Norland;")),
    P(466, "location", "Delaford", append="It was a long journey to Delaford, far away in Northumberland, and he could not go and return in less than a week."),
    # knowledge
    P(285, "knowledge", "Edward's engagement to Lucy", append="Marianne alone sat silent: she had known for months that Edward was engaged to Lucy Steele, and could not bear to look at him."),
    P(426, "knowledge", "Edward's engagement to Lucy", append="Mrs. Jennings, who had long been in the secret of Edward's engagement, only winked at Elinor across the table."),
    P(122, "knowledge", "Willoughby's seduction of Eliza Williams", append="Mrs. Dashwood, who had heard from the Colonel how Willoughby had used poor Eliza Williams, received him all the same with her usual warmth."),
    # clean
    *C(1, 2, 30, 44, 58, 615, 101, 104, 140, 171, 192, 281, 282, 348, 370, 376, 404, 563),
])

# --- Pride and Prejudice (dev) -----------------------------------------------------------------
BOOKS["prideprejudice"] = dict(split="dev", canon=[
    E("character", "Elizabeth Bennet", ["Elizabeth", "Lizzy", "Eliza", "Miss Elizabeth"], "alive",
      ["Not yet one-and-twenty.", "Fine dark eyes."]),
    E("character", "Jane Bennet", ["Jane", "Miss Bennet"], "alive", ["The eldest sister, two-and-twenty."]),
    E("character", "Lydia Bennet", ["Lydia"], "alive", ["The youngest sister, fifteen years old."]),
    E("character", "Mr. Darcy", ["Darcy", "Fitzwilliam Darcy"], "alive",
      ["Master of Pemberley.", "Ten thousand a year."]),
    E("character", "The late Mr. Darcy", ["old Mr. Darcy"], "dead",
      ["Mr. Darcy's father, died about five years ago; Wickham's godfather."]),
    E("character", "George Wickham", ["Wickham", "Mr. Wickham"], "alive",
      ["An officer in the militia, son of the late Mr. Darcy's steward."]),
    E("character", "Lady Catherine de Bourgh", ["Lady Catherine", "her ladyship"], "alive",
      ["A widow, lady of Rosings Park, Darcy's aunt.", "Daughter of an earl; Lady Catherine by birth."]),
    E("character", "Sir Lewis de Bourgh", ["Sir Lewis"], "dead", ["Lady Catherine's late husband."]),
    E("character", "Mr. Collins", ["Collins"], "alive", ["A clergyman of five-and-twenty, heir to Longbourn."]),
    E("character", "Charlotte Lucas", ["Charlotte", "Mrs. Collins"], "alive", ["Twenty-seven years old."]),
    E("character", "Georgiana Darcy", ["Georgiana", "Miss Darcy"], "alive", ["Mr. Darcy's sister, about sixteen."]),
    E("object", "Darcy's letter", ["the letter from Darcy"], "held by Elizabeth Bennet",
      ["Darcy's account of Wickham, given to Elizabeth at Rosings."]),
    E("object", "Lydia's bonnet", [], "held by Lydia Bennet", ["A bonnet Lydia bought on the road, not very pretty."]),
    E("object", "Wickham's miniature", ["the miniature of Mr. Wickham"], "in Pemberley",
      ["Hangs over the mantelpiece of a room at Pemberley."]),
    E("place", "Pemberley", [], "", ["Mr. Darcy's house in Derbyshire."]),
    E("place", "Rosings Park", ["Rosings"], "", ["Lady Catherine's house in Kent, near Hunsford."]),
    E("place", "Longbourn", [], "", ["The Bennets' house in Hertfordshire, a mile from Meryton."]),
    E("event", "Wickham's attempt to elope with Georgiana", ["Ramsgate"], "secret",
      ["Known only to Mr. Darcy, Georgiana Darcy, Colonel Fitzwilliam and Elizabeth Bennet."]),
], items=[
    # status
    P(224, "status", "Sir Lewis de Bourgh", append="Sir Lewis de Bourgh himself, Mr. Collins went on, had walked him round the new shelves in the closet only last week, and pronounced them very handsome."),
    P(277, "status", "The late Mr. Darcy", append="Old Mr. Darcy, who had driven over from Pemberley on purpose, was seen laughing at the card-table with Mrs. Phillips, as merry as any of the officers."),
    P(490, "status", "Sir Lewis de Bourgh", append="Sir Lewis was to hand the ladies in himself, as he did with every new guest, and he was known to be very exact about the hour."),
    P(765, "status", "The late Mr. Darcy", append="The late Mr. Darcy received them himself in the saloon, and begged their pardon for his son, who was out with the fishing party."),
    # attributes
    P(9, "attribute", "Elizabeth Bennet", append="Lizzy, with her pale blue eyes and her flaxen curls, had always been her mother's least favourite, and knew it."),
    P(357, "attribute", "Lydia Bennet", replace=("She was met in the vestibule by Lydia,", "She was met in the vestibule by Lydia, who at nearly twenty ought to have known better,")),
    P(373, "attribute", "Georgiana Darcy", append="Georgiana is a woman of five-and-thirty now, and quite settled in her ways; but she is as charming as ever."),
    P(486, "attribute", "Lady Catherine de Bourgh", append="That Lady Catherine had been born plain Miss Catherine Hobbs, the daughter of a Bristol sugar-merchant, he never mentioned."),
    P(454, "attribute", "Charlotte Lucas", replace=("added Charlotte,", "added Charlotte, whose nineteen years had never yet taken her so far from home,")),
    # possession
    P(613, "possession", "Darcy's letter", append="Darcy's letter she no longer had: she had given it up to Colonel Fitzwilliam that morning, to be carried back to his cousin."),
    P(645, "possession", "Lydia's bonnet", append="Kitty had Lydia's new bonnet on her own head by now, it having been made over to her for good at the inn, and Lydia did not seem to miss it."),
    # location
    P(727, "location", "Wickham's miniature", append="The miniature of Mr. Wickham, she had already been told, had been taken away years since, and hung now in Lady Catherine's dressing-room at Rosings."),
    P(706, "location", "Pemberley", append="Pemberley, after all, lay in the very heart of Kent, and the Gardiners had never meant to come so far south."),
    # knowledge
    P(93, "knowledge", "Wickham's attempt to elope with Georgiana", append="Lydia, who had the whole story of Mr. Wickham and Miss Darcy at Ramsgate from one of the officers, was longing to tell it to somebody."),
    P(479, "knowledge", "Wickham's attempt to elope with Georgiana", append="He added, lowering his voice, that Miss Darcy had once very nearly run off with Mr. Wickham from Ramsgate, though her ladyship was never told of it."),
    P(290, "knowledge", "Wickham's attempt to elope with Georgiana", append="Jane had heard from Mr. Bingley the whole history of Wickham and Miss Darcy at Ramsgate, and could not think of him without a shudder."),
    # clean
    *C(39, 122, 214, 704, 234, 255, 260, 445, 521, 549, 597, 603, 713, 714, 716, 1093, 1143),
])

# --- Northanger Abbey (dev) --------------------------------------------------------------------
BOOKS["northangerabbey"] = dict(split="dev", canon=[
    E("character", "Catherine Morland", ["Catherine", "Miss Morland"], "alive",
      ["Seventeen years old.", "Dark hair; as a child she had a sallow skin and dark lank hair."]),
    E("character", "Mrs. Tilney", ["the late Mrs. Tilney"], "dead",
      ["Henry and Eleanor's mother, dead these nine years."]),
    E("character", "General Tilney", ["the General"], "alive",
      ["A general, a widower past the bloom of life, master of Northanger Abbey."]),
    E("character", "Henry Tilney", ["Henry", "Mr. Tilney"], "alive",
      ["A clergyman, with a parsonage at Woodston."]),
    E("character", "Eleanor Tilney", ["Eleanor", "Miss Tilney"], "alive", ["Henry's sister."]),
    E("character", "Isabella Thorpe", ["Isabella"], "alive", ["Catherine's friend at Bath, engaged to James Morland."]),
    E("character", "John Thorpe", ["Thorpe"], "alive", ["Isabella's brother, a braggart who drives a gig."]),
    E("object", "Thorpe's gig", [], "owned by John Thorpe", ["A gig John Thorpe boasts of."]),
    E("object", "the manuscript", ["the washing-bill", "the roll of paper"], "in the black cabinet",
      ["Found by Catherine in the black cabinet of her room at Northanger; only an inventory of linen."]),
    E("object", "the portrait of Mrs. Tilney", ["her mother's picture"], "in Eleanor's bedchamber",
      ["A portrait of the late Mrs. Tilney that the General did not care for."]),
    E("place", "Northanger Abbey", ["Northanger", "the abbey"], "", ["General Tilney's house in Gloucestershire."]),
    E("place", "Woodston", [], "", ["Henry's parsonage, nearly twenty miles from Northanger."]),
    E("place", "Fullerton", [], "", ["The Morlands' village in Wiltshire."]),
    E("event", "the General's mistake about Catherine's fortune", ["Catherine's fortune"], "secret",
      ["John Thorpe told the General that Catherine was the Allens' heiress; known only to them."]),
], items=[
    # status
    P(446, "status", "Mrs. Tilney", append="Mrs. Tilney herself met them at the door of the gallery, and asked them, smiling, where they were going in such a hurry."),
    P(307, "status", "Mrs. Tilney", append="Mrs. Tilney sat with them the whole half hour, and talked very pleasantly of the roads into Gloucestershire."),
    P(528, "status", "Mrs. Tilney", append="Only Mrs. Tilney, watching from the window of her dressing-room, had seemed really sorry to see her go."),
    P(464, "status", "Mrs. Tilney", append="The late Mrs. Tilney, when she heard the whole story at dinner, laughed at it more heartily than anybody."),
    # attributes
    P(12, "attribute", "Catherine Morland", append="Her golden hair, which Mrs. Allen had dressed for her that morning, was already coming down."),
    P(147, "attribute", "Catherine Morland", append="Catherine, who would be thirty at Michaelmas, could not help laughing at such talk."),
    P(380, "attribute", "Henry Tilney", append="He was a lieutenant in the navy, after all, and his ship might call him away from either house any day."),
    P(216, "attribute", "General Tilney", append="The General, a spry young man of two-and-twenty, laughed loudly at everything Thorpe said."),
    # possession
    P(84, "possession", "Thorpe's gig", replace=("What do you think of my gig, Miss Morland?", "What do you think of your brother's gig, Miss Morland? Morland has lent it me for the week, you know.")),
    P(407, "possession", "the manuscript", append="Henry had kept the roll of paper ever since that night, and had never given it back to her."),
    P(405, "possession", "the manuscript", append="The manuscript itself she no longer had: Eleanor had taken it out of the cabinet the evening before and kept it."),
    # location
    P(427, "location", "the portrait of Mrs. Tilney", append="Her mother's picture, Eleanor said, the General kept locked in his own study, where nobody else ever went."),
    P(488, "location", "Woodston", append="Woodston, which lay not a mile from the abbey gates, could be walked to before breakfast."),
    P(285, "location", "Fullerton", append="Fullerton, up in the far north of Yorkshire, seemed a world away from such talk."),
    # knowledge
    P(337, "knowledge", "the General's mistake about Catherine's fortune", append="Catherine knew very well, for John Thorpe had boasted of it to her, that the General took her for the Allens' heiress, and the knowledge made her uneasy."),
    P(442, "knowledge", "the General's mistake about Catherine's fortune", append="Eleanor, who had long known that her father believed Catherine's fortune to be very great, could not meet her eyes at breakfast."),
    # clean
    *C(1, 49, 52, 78, 174, 206, 250, 302, 378, 560, 402, 404, 424, 438, 489, 520, 565),
])

# --- Emma (test) -------------------------------------------------------------------------------
BOOKS["emma"] = dict(split="test", canon=[
    E("character", "Emma Woodhouse", ["Emma", "Miss Woodhouse"], "alive",
      ["Handsome, clever and rich, nearly twenty-one.", "Hazel eyes."]),
    E("character", "Harriet Smith", ["Harriet", "Miss Smith"], "alive",
      ["Seventeen, the natural daughter of somebody.", "Short, plump and fair, with blue eyes and light hair."]),
    E("character", "Jane Fairfax", ["Miss Fairfax"], "alive",
      ["Miss Bates's orphan niece.", "Her eyes are a deep grey, with dark eye-lashes."]),
    E("character", "Mr. Knightley", ["George Knightley"], "alive",
      ["Seven or eight-and-thirty, owner of Donwell Abbey."]),
    E("character", "Mrs. Churchill", [], "dead", ["Frank Churchill's aunt, who brought him up at Enscombe."]),
    E("character", "Mrs. Woodhouse", ["Emma's mother"], "dead", ["Died when Emma was a small child."]),
    E("character", "Lieutenant Fairfax", [], "dead", ["Jane Fairfax's father, killed in action abroad."]),
    E("character", "Frank Churchill", ["Frank", "Mr. Frank Churchill"], "alive",
      ["Mr. Weston's son, brought up by the Churchills at Enscombe."]),
    E("character", "Miss Bates", [], "alive", ["Jane Fairfax's aunt, a great talker."]),
    E("character", "Mrs. Weston", [], "alive", ["Emma's former governess, Miss Taylor, now married to Mr. Weston."]),
    E("object", "Harriet's treasures", ["Most precious treasures", "the court-plaister"], "held by Harriet Smith",
      ["A little box of keepsakes of Mr. Elton: a piece of court-plaister and the end of an old pencil."]),
    E("object", "the pianoforte", ["Jane's pianoforte"], "in Miss Bates's house",
      ["A Broadwood sent anonymously to Jane Fairfax, standing in the Bateses' sitting-room."]),
    E("place", "Enscombe", [], "", ["The Churchills' estate in Yorkshire, far from Highbury."]),
    E("place", "Donwell Abbey", ["Donwell"], "", ["Mr. Knightley's house, about a mile from Highbury."]),
    E("place", "Hartfield", [], "", ["The Woodhouses' house in Highbury."]),
    E("event", "Frank Churchill's engagement to Jane Fairfax", ["engaged to Jane Fairfax", "Frank's engagement"], "secret",
      ["A secret engagement known only to Frank Churchill and Jane Fairfax."]),
], items=[
    # status
    P(1136, "status", "Mrs. Churchill", append="Mrs. Churchill herself, it was said, had written to Randalls that very morning to ask after Mrs. Weston's health."),
    P(313, "status", "Mrs. Woodhouse", append="Mrs. Woodhouse, who seldom troubled herself to contradict her husband, only smiled and went on with her netting."),
    P(487, "status", "Lieutenant Fairfax", append="Lieutenant Fairfax had come down with her from London, and was to stay at the Crown till Monday."),
    P(1063, "status", "Mrs. Churchill", append="Mrs. Churchill, to everyone's surprise, had been persuaded to join the party, and was driven over from Richmond in a barouche."),
    # attributes
    P(55, "attribute", "Harriet Smith", replace=("with a fine bloom, blue eyes, light hair,", "with a fine bloom, eyes as dark as sloes, a mass of black hair,")),
    P(619, "attribute", "Jane Fairfax", append="Miss Fairfax's blue eyes were fixed on the door for the whole of the evening."),
    P(458, "attribute", "Emma Woodhouse", append="At six-and-twenty, Emma thought herself quite old enough to choose her own society."),
    P(661, "attribute", "Mr. Knightley", append="Mr. Knightley, a young man of barely five-and-twenty, was not likely to think of marrying anybody yet."),
    P(56, "attribute", "Emma Woodhouse", append="Emma's eyes, of the clearest blue, rested on her with real pleasure."),
    # possession
    P(1002, "possession", "Harriet's treasures", append="The little parcel of treasures Harriet had given to Elizabeth Martin weeks ago, and Elizabeth Martin kept it still."),
    P(1004, "possession", "Harriet's treasures", append="Mr. Elton, Emma now remembered, had asked for the court-plaister back, and Harriet had sent him the whole box the next morning."),
    # location
    P(622, "location", "the pianoforte", append="And so the instrument is to stand here with us at the Coles', and Miss Fairfax must come to us whenever she wishes to play."),
    P(640, "location", "Enscombe", append="Enscombe, after all, was only a morning's drive from Highbury, and he might come and go as he pleased."),
    P(1045, "location", "Donwell Abbey", append="Donwell, a long day's journey away in Kent, could hardly be managed before August."),
    # knowledge
    P(311, "knowledge", "Frank Churchill's engagement to Jane Fairfax", append="Emma, who knew perfectly well that Jane Fairfax was engaged to Frank Churchill, said nothing of it to Isabella."),
    P(364, "knowledge", "Frank Churchill's engagement to Jane Fairfax", append="Mrs. Weston, who had been told in confidence of Frank's engagement, could only smile at Emma's certainty."),
    P(918, "knowledge", "Frank Churchill's engagement to Jane Fairfax", append="Miss Bates, who alone in Highbury knew that her niece was engaged to Frank Churchill, was careful to say nothing at all."),
    # clean
    *C(36, 54, 118, 123, 253, 302, 433, 485, 497, 563, 658, 698, 1020, 1135, 1147, 1327),
])

# --- Persuasion (test) -------------------------------------------------------------------------
BOOKS["persuasion"] = dict(split="test", canon=[
    E("character", "Anne Elliot", ["Anne"], "alive", ["Twenty-seven years old; her bloom faded early."]),
    E("character", "Sir Walter Elliot", ["Sir Walter"], "alive",
      ["A baronet, of Kellynch Hall; vain of his looks and his rank.", "A widower these thirteen years."]),
    E("character", "Lady Elliot", [], "dead", ["Anne's mother, who died thirteen years ago."]),
    E("character", "Captain Wentworth", ["Frederick Wentworth", "Wentworth"], "alive",
      ["A captain in the navy, made rich by prize-money in the war."]),
    E("character", "Captain Harville", ["Harville"], "alive", ["A naval officer, lamed by a severe wound."]),
    E("character", "Captain Benwick", ["Benwick"], "alive", ["Was to have married Fanny Harville."]),
    E("character", "Fanny Harville", [], "dead", ["Captain Harville's sister, Benwick's betrothed; died last summer."]),
    E("character", "Dick Musgrove", ["poor Richard", "Dick"], "dead",
      ["The Musgroves' troublesome son, who died abroad at sea."]),
    E("character", "Mrs Smith", [], "alive",
      ["Anne's old school-fellow, a poor widow crippled by rheumatic fever, lodging in Westgate Buildings."]),
    E("character", "Mr Smith", [], "dead", ["Mrs Smith's late husband, once Mr Elliot's friend."]),
    E("character", "Mr Elliot", ["William Elliot", "William Walter Elliot"], "alive", ["Sir Walter's heir."]),
    E("character", "Lady Russell", [], "alive", ["A widow, Anne's godmother and friend."]),
    E("object", "the miniature of Captain Benwick", ["Benwick's miniature"], "held by Captain Harville",
      ["Painted for Fanny Harville; Harville has it to be reset for Louisa."]),
    E("object", "Mr Elliot's letter", [], "held by Mrs Smith",
      ["Mr Elliot's old letter to Mr Smith, sneering at Sir Walter."]),
    E("place", "Kellynch Hall", ["Kellynch"], "let to Admiral Croft", ["Sir Walter's seat in Somersetshire."]),
    E("place", "Uppercross", [], "", ["The Musgroves' village, three miles from Kellynch."]),
    E("place", "Lyme", [], "", ["A sea-side town in Dorsetshire, seventeen miles from Uppercross."]),
    E("event", "Anne's old engagement to Wentworth", ["engaged to Anne", "Wentworth's old engagement"], "secret",
      ["Known only to Anne, Wentworth, Sir Walter, Elizabeth Elliot and Lady Russell; the Musgroves never knew."]),
    E("event", "Mr Elliot's ruin of Mr Smith", ["ruined his friend"], "secret",
      ["Known only to Mrs Smith, until she tells Anne in Bath."]),
], items=[
    # status
    P(15, "status", "Lady Elliot", append="Lady Elliot, as usual, was left to soothe him and to find the money somewhere."),
    P(122, "status", "Dick Musgrove", append="Dick Musgrove himself, home on leave and burnt brown by the sun, declared that he had known the fellow well at Gibraltar."),
    P(289, "status", "Fanny Harville", append="Fanny Harville, walking a little behind them on her brother's arm, laughed at their solemnity."),
    P(565, "status", "Mr Smith", append="Mr Smith, from his chair by the fire, nodded to confirm every word she said."),
    # attributes
    P(332, "attribute", "Anne Elliot", append="At nineteen, with all her bloom about her, Anne could not yet feel herself much altered by any of it."),
    P(402, "attribute", "Sir Walter Elliot", append="Sir Walter, who was no baronet at all but a plain squire whose grandfather had bought the land, had no real claim to rank."),
    P(311, "attribute", "Captain Wentworth", append="Wentworth, a clergyman, as he liked to remind them, and never a sailor, turned to Anne again."),
    P(262, "attribute", "Captain Harville", append="Captain Harville, who had never had a day's hurt in his life, sprang up the narrow stairs two at a time."),
    # possession
    P(647, "possession", "the miniature of Captain Benwick", append="The little miniature of Benwick, Anne knew, Harville had handed back to Benwick himself that very morning."),
    P(573, "possession", "Mr Elliot's letter", append="The letter in which Mr Elliot had sneered at Sir Walter was no longer in Mrs Smith's keeping: Nurse Rooke had carried it off to Mrs Clay."),
    P(37, "possession", "Kellynch Hall", append="Kellynch Hall, now that the Crofts had given up their lease, was his own to live in again."),
    # location
    P(483, "location", "Mrs Smith", append="Anne found Mrs Smith in her new lodgings in Milsom Street, the handsomest rooms in Bath."),
    P(188, "location", "Uppercross", append="Uppercross, a full two days' journey from Kellynch, could only be visited in the summer."),
    P(273, "location", "Lyme", append="Lyme, after all, lay on the coast of Norfolk, and the sea there was grey and cold."),
    # knowledge
    P(117, "knowledge", "Anne's old engagement to Wentworth", append="Louisa, who had known from the first that Captain Wentworth had once been engaged to Anne, watched her face as she spoke."),
    P(385, "knowledge", "Mr Elliot's ruin of Mr Smith", append="Lady Russell, who knew very well how Mr Elliot had ruined his friend Mr Smith, received his compliments coldly."),
    P(440, "knowledge", "Anne's old engagement to Wentworth", append="Mary added that she had found out all about Captain Wentworth's old engagement to Anne, and thought it a very good joke."),
    # clean
    *C(5, 6, 10, 89, 165, 251, 255, 256, 299, 324, 411, 430, 431, 568, 594, 641),
])

# --- Mansfield Park (test) ---------------------------------------------------------------------
BOOKS["mansfieldpark"] = dict(split="test", canon=[
    E("character", "Fanny Price", ["Fanny", "Miss Price"], "alive",
      ["Eighteen at the time of her first ball.", "Small and slight, with a delicate constitution."]),
    E("character", "Edmund Bertram", ["Edmund"], "alive",
      ["Sir Thomas's younger son, to be ordained and take the living of Thornton Lacey."]),
    E("character", "Sir Thomas Bertram", ["Sir Thomas"], "alive",
      ["A baronet, master of Mansfield Park, with an estate in Antigua."]),
    E("character", "Lady Bertram", [], "alive", ["Indolent; spends her days on the sofa with her pug."]),
    E("character", "the pug", ["Lady Bertram's pug"], "alive", ["Lady Bertram's little dog."]),
    E("character", "Mr. Norris", [], "dead", ["Mrs. Norris's husband, the parson, who died when Fanny was about fifteen."]),
    E("character", "Mrs. Crawford", ["the Admiral's lady"], "dead",
      ["Henry and Mary Crawford's aunt, whose death sent them to their sister at Mansfield."]),
    E("character", "Mary Crawford", ["Miss Crawford"], "alive", ["Lively and pretty; she plays the harp."]),
    E("character", "Henry Crawford", ["Mr. Crawford"], "alive", ["Mary's brother, owner of Everingham in Norfolk."]),
    E("character", "William Price", ["William"], "alive", ["Fanny's brother, a midshipman in the navy."]),
    E("object", "the amber cross", ["William's cross"], "held by Fanny Price",
      ["An amber cross William brought Fanny from Sicily."]),
    E("object", "the gold chain", ["Edmund's chain"], "held by Fanny Price", ["A plain gold chain Edmund bought for the cross."]),
    E("object", "Miss Crawford's harp", ["the harp"], "in the Parsonage", ["Stands by a window of the Parsonage."]),
    E("place", "Mansfield Park", ["Mansfield"], "", ["Sir Thomas's house in Northamptonshire."]),
    E("place", "Sotherton Court", ["Sotherton"], "", ["Mr. Rushworth's seat, ten miles from Mansfield."]),
    E("place", "Thornton Lacey", [], "", ["Edmund's future living, about eight miles from Mansfield."]),
    E("event", "Henry Crawford's part in William's promotion", ["William's promotion"], "secret",
      ["Known only to Henry Crawford and his uncle the Admiral, until Henry tells Fanny."]),
    E("event", "the necklace was Henry's choice", ["Henry's necklace"], "secret",
      ["Known only to Mary and Henry Crawford."]),
], items=[
    # status
    P(129, "status", "Mr. Norris", append="Mr. Norris, from the far end of the table, said he would not have Repton for less than twenty guineas a day."),
    P(164, "status", "Mr. Norris", append="Mr. Norris, coming in from the Parsonage garden with his hat in his hand, stopped at the window to listen."),
    P(140, "status", "Mrs. Crawford", append="Mrs. Crawford, their aunt, had written from London that very morning to say she was coming down to see them."),
    # attributes
    P(677, "attribute", "Fanny Price", append="Fanny, at five-and-twenty, had long since ceased to expect that anybody would ask her to dance."),
    P(14, "attribute", "the pug", replace=('"I hope she will not tease my poor pug," said Lady Bertram;', '"I hope she will not tease my poor pug," said Lady Bertram, "for the little cat is so easily frightened, and scratches;"')),
    P(620, "attribute", "William Price", append="William, a post-captain these three years with a frigate of his own, was to have ten days' leave."),
    P(640, "attribute", "Edmund Bertram", append="Edmund, who was to be a lawyer in London and never a clergyman, laughed at all Crawford's plans for the parsonage."),
    # possession
    P(692, "possession", "the amber cross", append="William's amber cross was still with Mrs. Norris, who had taken it away to be cleaned and never brought it back."),
    P(714, "possession", "the gold chain", append="The plain gold chain Edmund had given her, Fanny had already handed to Miss Crawford, in exchange for the necklace."),
    # location
    P(151, "location", "Miss Crawford's harp", append="The harp had been carried up to the great house the day before, and stood now in the drawing-room at Mansfield Park."),
    P(125, "location", "Sotherton Court", append="Sotherton, not a quarter of a mile beyond the park gates, could be walked to in ten minutes."),
    P(642, "location", "Thornton Lacey", append="Thornton Lacey lay a good sixty miles off, in Derbyshire, and could not be reached in a day."),
    # knowledge
    P(633, "knowledge", "Henry Crawford's part in William's promotion", append="Fanny knew, for Henry Crawford had told her the week before, that it was his uncle the Admiral who was getting William his promotion."),
    P(699, "knowledge", "the necklace was Henry's choice", append="Edmund, who knew very well that the necklace had been Henry Crawford's choice and not his sister's, said nothing of that."),
    P(98, "status", "Mrs. Crawford", append="Mrs. Crawford, their aunt, was to drive down from London for the wedding herself, she had written, whatever the roads."),
    P(685, "possession", "the amber cross", append="The amber cross itself, Fanny remembered with a pang, William had taken back to sea with him."),
    P(661, "knowledge", "Henry Crawford's part in William's promotion", append="Lady Bertram, who had heard from Henry Crawford that his uncle would see to William's promotion, repeated it to everybody."),
    # clean
    *C(1, 5, 18, 23, 540, 42, 46, 65, 82, 285, 538, 668, 684, 740, 968, 1187),
])

# --- Chinese: paraphrased from Pride and Prejudice (dev) and Emma (test) -------------------------
# No published Chinese novel ships in a package these registries serve, so these paragraphs were
# written in Chinese by the set's author, each retelling a passage of the English novel (its number
# in the English cut is given); the planted ones then had one sentence changed or added.
ZH["prideprejudice"] = dict(split="dev", canon=[
    E("character", "伊丽莎白·班纳特", ["伊丽莎白", "丽萃"], "活着", ["还不到二十一岁。", "一双乌黑的眼睛，神采动人。"]),
    E("character", "莉迪亚", [], "活着", ["班纳特家最小的女儿，十五岁。"]),
    E("character", "达西先生", ["达西"], "活着", ["彭伯里的主人，年收入一万镑。"]),
    E("character", "老达西先生", ["已故的达西先生"], "已故", ["达西先生的父亲，五年前去世，是威克姆的教父。"]),
    E("character", "威克姆", ["威克姆先生"], "活着", ["民兵团的军官，老达西先生管家的儿子。"]),
    E("character", "凯瑟琳夫人", ["凯瑟琳·德包尔夫人"], "活着", ["罗辛斯庄园的女主人，达西的姨妈，伯爵之女。"]),
    E("character", "路易斯爵士", ["路易斯·德包尔爵士"], "已故", ["凯瑟琳夫人已故的丈夫。"]),
    E("character", "夏绿蒂", ["夏绿蒂·卢卡斯"], "活着", ["二十七岁。"]),
    E("character", "乔治安娜", ["达西小姐"], "活着", ["达西先生的妹妹，十六岁左右。"]),
    E("object", "达西的信", [], "伊丽莎白·班纳特持有", ["达西在罗辛斯交给伊丽莎白的长信。"]),
    E("object", "威克姆的小像", [], "在彭伯里", ["挂在彭伯里一间屋子的壁炉上方。"]),
    E("place", "彭伯里", [], "", ["达西先生在德比郡的庄园。"]),
    E("place", "罗辛斯", ["罗辛斯庄园"], "", ["凯瑟琳夫人在肯特郡的宅第。"]),
    E("event", "威克姆企图与乔治安娜私奔", ["拉姆斯盖特"], "秘密",
      ["只有达西先生、乔治安娜、菲茨威廉上校和伊丽莎白知道。"]),
], items=[
    Z(224, "晚饭时班纳特先生几乎一言不发。仆人退下后，他才同客人谈起话来，夸他有一位好恩主。柯林斯先生立刻滔滔不绝地称赞凯瑟琳夫人的和蔼与体贴。",
      "status", "路易斯爵士", planted="他还说，路易斯爵士上个礼拜亲自陪他看了书房里新装的书架，连声称好。"),
    Z(277, "伊丽莎白承认他解释得合情合理。两人谈得十分投机，直到打完牌、开了晚饭，别的小姐们才分到威克姆先生的殷勤。",
      "status", "老达西先生", planted="老达西先生特地从彭伯里赶来，坐在牌桌边同菲利普斯太太说笑，兴致比哪位军官都高。"),
    Z(9, "“我偏不许你这样做。丽萃一点也不比别人强；论模样不及吉英一半，论脾气不及莉迪亚一半。可你总是偏爱她。”",
      "attribute", "伊丽莎白·班纳特", planted="丽萃生着一双淡蓝色的眼睛和一头亚麻色的鬈发，向来不讨母亲喜欢。"),
    Z(357, "全家正乱作一团，夏绿蒂·卢卡斯来了。莉迪亚在门厅里迎上去，压低声音说：“你来得正好，今天可热闹了！”",
      "attribute", "莉迪亚", planted="莉迪亚都快二十岁了，本该懂事一些。"),
    Z(454, "伊丽莎白没法推辞，虽然料想这趟拜访不会有什么乐趣。婚礼一过，新人便从教堂门口直接动身去了肯特。",
      "attribute", "夏绿蒂", planted="夏绿蒂才十九岁，还从没离家这么远过。"),
    Z(613, "她一回来就听说，罗辛斯的两位先生都来过了：达西先生只坐了几分钟便告辞，菲茨威廉上校却足足等了一个钟头。",
      "possession", "达西的信", planted="达西的信她已经不在手里了——那天早上她把信交给了菲茨威廉上校，请他带回去还给表弟。"),
    Z(727, "画廊里挂着许多家族肖像，陌生人看了也不会多留意。伊丽莎白只寻找那张她认得的面孔，终于在一幅画前站住了。",
      "location", "威克姆的小像", planted="她听说威克姆的小像早就取下来了，如今挂在罗辛斯凯瑟琳夫人的梳妆室里。"),
    Z(706, "晚上回房时，她向女仆打听彭伯里是不是个好地方，主人叫什么名字，一家人今年夏天在不在。",
      "location", "彭伯里", planted="毕竟彭伯里就在肯特郡腹地，嘉丁纳夫妇本没打算往南走这么远。"),
    Z(93, "“妈妈，”莉迪亚嚷道，“姨妈说福斯特上校和卡特上尉不像刚来时那样常去华生小姐家了。”班纳特太太还没来得及回答，仆人送来一封给班纳特小姐的信。",
      "knowledge", "威克姆企图与乔治安娜私奔", planted="莉迪亚从一个军官那里听说了威克姆和达西小姐在拉姆斯盖特的事，正急着找人说。"),
    Z(479, "她已经知道凯瑟琳夫人还在乡下。吃饭时柯林斯先生又提起这件事，说礼拜天在教堂里就能见到凯瑟琳夫人了。",
      "knowledge", "威克姆企图与乔治安娜私奔", planted="他压低声音补充说，达西小姐当年在拉姆斯盖特差点跟威克姆先生私奔，只是夫人从来不知道。"),
    Z(255, "“哦，不，我可不会被达西先生赶走。他要是不愿见我，他自己走好了。他的父亲，已故的达西先生，是世上最好的人，我每次见到现在这位达西先生，总想起老人家的许多好处。”"),
    Z(597, "“我的好父亲大约五年前去世了。他到临终都很器重威克姆先生，在遗嘱里特别嘱咐我尽力提携他。”"),
    Z(713, "舅母叫她过去看一幅画。她走近一看，是威克姆先生的小像，同几幅别的小像一起挂在壁炉上方。管家说，那是她已故主人的管家的儿子。"),
    Z(716, "管家又指给他们看一幅达西小姐的画像，是她八岁时画的。“达西小姐和她哥哥一样好看吗？”嘉丁纳太太问。"),
    Z(521, "“你在说什么，菲茨威廉？你同班纳特小姐讲些什么？让我也听听。”凯瑟琳夫人嚷道。“我们在谈音乐，夫人。”"),
    Z(549, "“这是什么意思？”他一走，夏绿蒂便说，“亲爱的伊丽莎，他一定是爱上你了，不然绝不会这样随随便便来看我们。”"),
    Z(765, "姨甥俩头天晚上就商量好了：达西小姐一到彭伯里当天就来看她们，这份礼貌虽然比不上，也该尽力回敬。"),
    Z(603, "可是读到他讲威克姆先生的那一段，她的心情更加痛苦、更难说清了。惊讶、疑虑，甚至恐惧，一齐压在她心上。"),
    Z(490, "她们穿衣服时，柯林斯先生到门口来了两三次，催她们快些，因为凯瑟琳夫人最不喜欢等人开饭。"),
    Z(1143, "达西小姐得到消息后的欢喜，和她哥哥报信时一样真诚。四页信纸都写不尽她的高兴，和她想得到嫂嫂喜爱的心愿。"),
])
ZH["emma"] = dict(split="test", canon=[
    E("character", "爱玛", ["伍德豪斯小姐"], "活着", ["漂亮、聪明、富有，快满二十一岁。", "淡褐色的眼睛。"]),
    E("character", "哈丽特", ["哈丽特·史密斯", "史密斯小姐"], "活着", ["十七岁。", "矮小丰满，皮肤白皙，蓝眼睛，浅色头发。"]),
    E("character", "简·费尔法克斯", ["费尔法克斯小姐"], "活着", ["贝茨小姐的外甥女，父母双亡。", "深灰色的眼睛，黑睫毛。"]),
    E("character", "奈特利先生", [], "活着", ["三十七八岁，当维尔寺的主人。"]),
    E("character", "丘吉尔太太", [], "已故", ["弗兰克·丘吉尔的舅母，在恩斯康姆把他抚养长大。"]),
    E("character", "伍德豪斯太太", ["爱玛的母亲"], "已故", ["爱玛很小的时候就去世了。"]),
    E("character", "弗兰克·丘吉尔", ["弗兰克"], "活着", ["韦斯顿先生的儿子，由丘吉尔夫妇抚养。"]),
    E("character", "贝茨小姐", [], "活着", ["简·费尔法克斯的姨妈，极爱说话。"]),
    E("object", "哈丽特的珍藏", ["橡皮膏"], "哈丽特持有", ["一个小盒子，装着埃尔顿先生用过的一块橡皮膏和一截铅笔头。"]),
    E("object", "钢琴", [], "在贝茨小姐家", ["匿名送给简·费尔法克斯的布罗德伍德钢琴，放在贝茨家的小客厅里。"]),
    E("place", "恩斯康姆", [], "", ["丘吉尔家在约克郡的庄园，离海伯里很远。"]),
    E("place", "当维尔", ["当维尔寺"], "", ["奈特利先生的宅子，离海伯里大约一英里。"]),
    E("event", "弗兰克与简的秘密婚约", ["秘密订婚", "订了婚"], "秘密", ["只有弗兰克·丘吉尔和简·费尔法克斯知道。"]),
], items=[
    Z(1136, "这一切本没有什么可惊奇的，只是恰好碰上了爱玛心里正在想的事。丘吉尔太太在世上何等重要，简·费尔法克斯却微不足道。",
      "status", "丘吉尔太太", planted="据说丘吉尔太太今天早上还亲自写信到兰德尔斯，问候韦斯顿太太的身体。"),
    Z(313, "伍德豪斯先生全都同意，又补充道：“我们的小朋友哈丽特·史密斯也是这样一个可爱的年轻人。爱玛再找不到比她更好的伴了。”",
      "status", "伍德豪斯太太", planted="伍德豪斯太太向来懒得反驳丈夫，只笑了笑，继续织她的网眼活。"),
    Z(55, "她是个很漂亮的姑娘，恰好是爱玛特别欣赏的那一种。",
      "attribute", "哈丽特", planted="哈丽特矮小丰满，一双眼睛黑得像李子，满头乌发，神情十分温柔。"),
    Z(619, "客人不少，除了他们还有一户体面的乡绅人家。晚上贝茨小姐、费尔法克斯小姐和史密斯小姐也要来。",
      "attribute", "简·费尔法克斯", planted="费尔法克斯小姐那双蓝眼睛整晚都盯着门口。"),
    Z(661, "“韦斯顿太太，你一有了主意就跟着它跑。我看不出什么情意，也不相信钢琴能说明什么。”",
      "attribute", "奈特利先生", planted="奈特利先生才二十五岁，还不大可能想到结婚。"),
    Z(1002, "“你一定记得，”哈丽特说，“就在这间屋子里，我们说起橡皮膏的事。”",
      "possession", "哈丽特的珍藏", planted="那一小包珍藏，哈丽特几个礼拜前就送给了伊丽莎白·马丁，至今还在她那里。"),
    Z(622, "“我真是好久没听到这样叫人高兴的事了！简·费尔法克斯弹得那么好，却没有一架琴，我一直替她难过。”",
      "location", "钢琴", planted="“所以那架钢琴就放在我们科尔家，费尔法克斯小姐想弹的时候尽管来。”"),
    Z(640, "他说他急着离开餐厅，最讨厌久坐，总是第一个起身。",
      "location", "恩斯康姆", planted="恩斯康姆离海伯里不过一早上的车程，他想来就来，想走就走。"),
    Z(311, "她就这样说了很久，等她再回过头去听父亲和姐姐讲话时，只听见伊莎贝拉亲切地问起简·费尔法克斯。",
      "knowledge", "弗兰克与简的秘密婚约", planted="爱玛明明知道简·费尔法克斯已经和弗兰克·丘吉尔秘密订婚，却对伊莎贝拉只字未提。"),
    Z(364, "“看来全凭丘吉尔太太的脾气，而我想那是世上最靠得住的事了。”“我的爱玛！”韦斯顿太太笑道，“任性有什么靠得住的？”",
      "knowledge", "弗兰克与简的秘密婚约", planted="韦斯顿太太私下听说弗兰克早已订了婚，对象正是简，所以只能对爱玛的笃定笑笑。"),
    Z(36, "丘吉尔小姐已经成年，财产由她自己做主，谁也劝不住她，婚事照样办了，丘吉尔先生和丘吉尔太太大为恼火，体面地同她断了来往。"),
    Z(1147, "第二天，里士满来的消息把一切都压了下去。一个快差赶到兰德尔斯，报告丘吉尔太太去世了！"),
    Z(54, "哈丽特·史密斯是某个人的私生女。几年前有人把她送进戈达德太太的学校，最近又让她从学生升为寄宿生。"),
    Z(1327, "简笑着回答：“你说得很对，这事已经想过了。我可以告诉你，我们要同丘吉尔先生一起住在恩斯康姆，这已经定了。”"),
    Z(698, "他们走进小客厅时，里面一片安静：贝茨太太在炉火边打盹，弗兰克·丘吉尔坐在她旁边的桌前专心修她的眼镜，简·费尔法克斯背对着他们站在钢琴前。"),
    Z(1020, "奈特利先生越来越怀疑弗兰克·丘吉尔和简之间有什么私情。一天饭后，他照常走到哈特菲尔德去过晚上。"),
    Z(118, "哈丽特很快回来了，提议一说出口，她就没有什么顾虑了。爱玛想马上动手画。"),
    Z(487, "这种厌恶毫无道理，每一个想象出来的缺点都被夸大了，所以每次隔了很久再见到简·费尔法克斯，爱玛总觉得自己亏待了她。"),
    Z(658, "“真丢人，爱玛！别学她。我可不认为奈特利先生会被贝茨小姐烦着。小事情不会惹他生气。”"),
    Z(56, "她觉得史密斯小姐的谈话并不怎么聪明，却十分讨人喜欢——不太害羞，也不冒失，对能来哈特菲尔德心存感激。"),
])
