/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* markov:DirtyMarkovApp: a tiny text generator that streams its tokens,
 * as a language model would. init() trains a word-level Markov chain on a
 * text file ($DIRTY_MARKOV_CORPUS, else markov-corpus.txt in the
 * installed data directory); the actions walk the chain.
 *
 *   generate (sync, stream)        kwargs: words (50), seed, start (a
 *     word to go on from, not repeated). Sends each word as a string chunk (" word"), with a newline
 *     after each sentence. Runs on a worker thread and blocks when the
 *     reader falls behind, like a sync generator.
 *   generate_async (async, stream) the same from the main loop, one token
 *     every delay_ms (20), the way an async generator relays tokens from
 *     a remote model.
 */
#include <string.h>

#include <dirty.h>

#define DIRTY_TYPE_MARKOV_APP (dirty_markov_app_get_type ())
G_DECLARE_FINAL_TYPE (DirtyMarkovApp, dirty_markov_app, DIRTY, MARKOV_APP, DirtyApp)

struct _DirtyMarkovApp
{
  DirtyApp    parent_instance;

  /* Read-only after init(), so calls on many threads share it freely */
  GHashTable *next;    /* word -> GPtrArray of the words seen after it */
  GPtrArray  *starts;  /* words that begin a sentence */
};

G_DEFINE_FINAL_TYPE (DirtyMarkovApp, dirty_markov_app, DIRTY_TYPE_APP)

static char *
corpus_path (void)
{
  const char *path = g_getenv ("DIRTY_MARKOV_CORPUS");

  if (path != NULL && *path != '\0')
    return g_strdup (path);
  return g_build_filename (DIRTY_DATADIR, "markov-corpus.txt", NULL);
}

static gboolean
ends_sentence (const char *word)
{
  gsize len = strlen (word);

  return len > 0 && strchr (".!?", word[len - 1]) != NULL;
}

static void
learn (DirtyMarkovApp *self,
       char          **words)
{
  const char *previous = NULL;

  for (guint i = 0; words[i] != NULL; i++)
    {
      GPtrArray *followers;

      if (*words[i] == '\0')
        continue;
      if (previous == NULL || ends_sentence (previous))
        g_ptr_array_add (self->starts, g_strdup (words[i]));
      if (previous != NULL)
        {
          followers = g_hash_table_lookup (self->next, previous);
          if (followers == NULL)
            {
              followers = g_ptr_array_new_with_free_func (g_free);
              g_hash_table_insert (self->next, g_strdup (previous), followers);
            }
          g_ptr_array_add (followers, g_strdup (words[i]));
        }
      previous = words[i];
    }
}

static gboolean
dirty_markov_app_init_app (DirtyApp      *app,
                           GCancellable  *cancellable,
                           GError       **error)
{
  DirtyMarkovApp *self = DIRTY_MARKOV_APP (app);
  g_autofree char *path = corpus_path ();
  g_autofree char *text = NULL;
  g_auto(GStrv) words = NULL;

  if (!g_file_get_contents (path, &text, NULL, error))
    {
      g_prefix_error (error, "markov: no training text (set DIRTY_MARKOV_CORPUS): ");
      return FALSE;
    }
  words = g_regex_split_simple ("\\s+", text, 0, 0);
  learn (self, words);
  if (self->starts->len == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "markov: %s has no words", path);
      return FALSE;
    }
  return TRUE;
}

/* One walk of the chain, shared by both actions */
typedef struct {
  DirtyMarkovApp *app;
  GRand          *rand;
  gint64          left;
  const char     *word;   /* the last word sent; NULL before the first */
} Walk;

static void
walk_free (Walk *walk)
{
  g_rand_free (walk->rand);
  g_object_unref (walk->app);
  g_free (walk);
}

static Walk *
walk_new (DirtyMarkovApp  *self,
          DirtyCall       *call,
          GError         **error)
{
  gint64 words, seed;
  const char *start;
  gpointer key;
  Walk *walk;

  if (!dirty_call_get_kwarg_int (call, "words", 50, &words, error) ||
      !dirty_call_get_kwarg_int (call, "seed", g_random_int (), &seed, error) ||
      !dirty_call_get_kwarg_string (call, "start", NULL, &start, error))
    return NULL;
  walk = g_new0 (Walk, 1);
  walk->app = g_object_ref (self);
  walk->rand = g_rand_new_with_seed ((guint32) seed);
  walk->left = words;
  /* the app's own copy of the word: it outlives the call */
  if (start != NULL && g_hash_table_lookup_extended (self->next, start, &key, NULL))
    walk->word = key;
  return walk;
}

/* The next token (" word", or "word" first, with "\n" after a sentence),
 * or NULL once the walk is over. */
static char *
walk_next (Walk *walk)
{
  GPtrArray *followers = walk->word ? g_hash_table_lookup (walk->app->next, walk->word) : NULL;
  GPtrArray *choices = (followers != NULL && !ends_sentence (walk->word))
                       ? followers : walk->app->starts;
  /* no space at the start of the text or of a line */
  gboolean first = walk->word == NULL || ends_sentence (walk->word);

  if (walk->left-- <= 0)
    return NULL;
  walk->word = g_ptr_array_index (choices, g_rand_int_range (walk->rand, 0, choices->len));
  return g_strconcat (first ? "" : " ", walk->word, ends_sentence (walk->word) ? "\n" : "",
                      NULL);
}

static void
generate (DirtyApp  *app,
          DirtyCall *call,
          gpointer   user_data)
{
  GCancellable *cancellable = dirty_call_get_cancellable (call);
  GError *error = NULL;
  Walk *walk = walk_new (DIRTY_MARKOV_APP (app), call, &error);
  char *token;

  if (walk == NULL)
    {
      dirty_call_return_error (call, error);
      return;
    }
  /* a sync generator: each send blocks while the reader is a window behind,
   * and fails once the reader has gone away */
  while (error == NULL && (token = walk_next (walk)) != NULL)
    {
      g_autoptr(JsonNode) chunk = json_node_init_string (json_node_alloc (), token);

      g_free (token);
      dirty_call_send_chunk (call, chunk, cancellable, &error);
    }
  walk_free (walk);
  if (error != NULL)
    dirty_call_return_error (call, error);
  else
    dirty_call_end_stream (call);
}

/* ---- the async generator ---- */

typedef struct {
  DirtyCall *call;
  Walk      *walk;
  guint      delay_ms;
} AsyncGen;

static void
async_gen_free (AsyncGen *gen)
{
  walk_free (gen->walk);
  g_object_unref (gen->call);
  g_free (gen);
}

static void async_gen_sent_cb (GObject *source, GAsyncResult *result, gpointer user_data);

static gboolean
async_gen_tick_cb (gpointer user_data)
{
  AsyncGen *gen = user_data;
  g_autofree char *token = walk_next (gen->walk);
  g_autoptr(JsonNode) chunk = NULL;

  if (token == NULL)
    {
      dirty_call_end_stream (gen->call);
      async_gen_free (gen);
      return G_SOURCE_REMOVE;
    }
  chunk = json_node_init_string (json_node_alloc (), token);
  dirty_call_send_chunk_async (gen->call, chunk, NULL, async_gen_sent_cb, gen);
  return G_SOURCE_REMOVE;
}

/* The token had credit: produce the next one after the delay. */
static void
async_gen_sent_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  AsyncGen *gen = user_data;
  GError *error = NULL;

  if (!dirty_call_send_chunk_finish (DIRTY_CALL (source), result, &error))
    {
      dirty_call_return_error (gen->call, error);
      async_gen_free (gen);
      return;
    }
  g_timeout_add (gen->delay_ms, async_gen_tick_cb, gen);
}

static void
generate_async (DirtyApp  *app,
                DirtyCall *call,
                gpointer   user_data)
{
  GError *error = NULL;
  gint64 delay_ms;
  AsyncGen *gen;

  if (!dirty_call_get_kwarg_int (call, "delay_ms", 20, &delay_ms, &error))
    {
      dirty_call_return_error (call, error);
      return;
    }
  gen = g_new0 (AsyncGen, 1);
  gen->call = g_object_ref (call);
  gen->delay_ms = (guint) CLAMP (delay_ms, 0, 10000);
  gen->walk = walk_new (DIRTY_MARKOV_APP (app), call, &error);
  if (gen->walk == NULL)
    {
      g_object_unref (gen->call);
      g_free (gen);
      dirty_call_return_error (call, error);
      return;
    }
  async_gen_tick_cb (gen);
}

static void
dirty_markov_app_finalize (GObject *object)
{
  DirtyMarkovApp *self = DIRTY_MARKOV_APP (object);

  g_hash_table_unref (self->next);
  g_ptr_array_unref (self->starts);
  G_OBJECT_CLASS (dirty_markov_app_parent_class)->finalize (object);
}

static void
dirty_markov_app_class_init (DirtyMarkovAppClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dirty_markov_app_finalize;
  DIRTY_APP_CLASS (klass)->init = dirty_markov_app_init_app;
}

static void
dirty_markov_app_init (DirtyMarkovApp *self)
{
  self->next = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify) g_ptr_array_unref);
  self->starts = g_ptr_array_new_with_free_func (g_free);
  dirty_app_add_action (DIRTY_APP (self), "generate",
                        DIRTY_ACTION_SYNC | DIRTY_ACTION_STREAM, generate, NULL, NULL);
  dirty_app_add_action (DIRTY_APP (self), "generate_async",
                        DIRTY_ACTION_ASYNC | DIRTY_ACTION_STREAM, generate_async, NULL, NULL);
}
