/*
 * sfid: Salesforce ids in their 18-character case-safe form.
 *
 * A 15-character id is case-sensitive; the 18-character form appends three
 * characters, each encoding which of five consecutive characters of the
 * 15 are upper case (bit i set = character i of the chunk is A-Z), as an
 * index into "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345". Salesforce returns and the
 * sync stores 18-character ids; users paste either. See write.h.
 */
#include <ctype.h>
#include <string.h>

#include "write.h"

static const char SUFFIX[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

static int suffix_bits(char c)
{
    if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
    const char *p = c ? strchr(SUFFIX, c) : NULL;
    return p ? (int)(p - SUFFIX) : -1;
}

bool write_sfid18(const char *in, char out[19])
{
    size_t n = in ? strlen(in) : 0;
    if (n != 15 && n != 18)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)in[i]))
            return false;
    memcpy(out, in, 15);
    if (n == 18) {
        /* the suffix is case-insensitive and says which letters are upper case: an id whose case was
           lost (lower-cased by a spreadsheet, say) comes back as Salesforce wrote it */
        for (int c = 0; c < 3; c++) {
            int bits = suffix_bits(in[15 + c]);
            if (bits < 0)
                return false;
            for (int i = 0; i < 5; i++) {
                char *ch = &out[c * 5 + i];
                if (isalpha((unsigned char)*ch))
                    *ch = (char)((bits >> i) & 1 ? toupper((unsigned char)*ch) : tolower((unsigned char)*ch));
                else if ((bits >> i) & 1)
                    return false; /* the suffix marks a digit as upper case: not a valid id */
            }
        }
    }
    for (int c = 0; c < 3; c++) {
        int bits = 0;
        for (int i = 0; i < 5; i++)
            if (out[c * 5 + i] >= 'A' && out[c * 5 + i] <= 'Z')
                bits |= 1 << i;
        out[15 + c] = SUFFIX[bits];
    }
    out[18] = '\0';
    return true;
}
